package interop

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Core-NATS checks with nats.go directly: stan-broker embeds its own core-NATS server, and
// every streaming client relies on these basics.

// nextMsg waits for the next message of a synchronous subscription.
func nextMsg(t *testing.T, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	m, err := sub.NextMsg(waitTimeout)
	if err != nil {
		t.Fatalf("next message on %q: %v", sub.Subject, err)
	}
	return m
}

// noMsg checks that a synchronous subscription stays empty for quietWindow.
func noMsg(t *testing.T, sub *nats.Subscription) {
	t.Helper()
	if m, err := sub.NextMsg(quietWindow); err == nil {
		t.Fatalf("unexpected message on %q: subject %q data %q", sub.Subject, m.Subject, m.Data)
	} else if !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("waiting on %q: %v", sub.Subject, err)
	}
}

func syncSub(t *testing.T, nc *nats.Conn, subject string) *nats.Subscription {
	t.Helper()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatalf("subscribe %q: %v", subject, err)
	}
	return sub
}

func flush(t *testing.T, nc *nats.Conn) {
	t.Helper()
	if err := nc.FlushTimeout(waitTimeout); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func TestCoreServerInfo(t *testing.T) {
	nc := natsConnect(t)
	if !nc.HeadersSupported() {
		t.Error("server does not announce header support")
	}
	if nc.MaxPayload() <= 0 {
		t.Errorf("max payload %d", nc.MaxPayload())
	}
	if _, err := nc.RTT(); err != nil {
		t.Errorf("RTT: %v", err)
	}
}

func TestCorePubSubWildcards(t *testing.T) {
	pubConn, subConn := natsConnect(t), natsConnect(t)
	root := uniqueName(t, "s")
	exact := syncSub(t, subConn, root+".a.b")
	star := syncSub(t, subConn, root+".*.b")
	gt := syncSub(t, subConn, root+".>")
	flush(t, subConn)

	for _, subj := range []string{root + ".a.b", root + ".x.b", root + ".a.b.c", root} {
		if err := pubConn.Publish(subj, []byte(subj)); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, pubConn)
	tests := []struct {
		name string
		sub  *nats.Subscription
		want []string
	}{
		{"literal", exact, []string{root + ".a.b"}},
		{"star", star, []string{root + ".a.b", root + ".x.b"}},
		{"gt", gt, []string{root + ".a.b", root + ".x.b", root + ".a.b.c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, want := range tc.want {
				m := nextMsg(t, tc.sub)
				if m.Subject != want || string(m.Data) != want {
					t.Fatalf("got subject %q data %q, want %q", m.Subject, m.Data, want)
				}
			}
			noMsg(t, tc.sub)
		})
	}
}

func TestCoreUnsubscribeAndAutoUnsubscribe(t *testing.T) {
	nc := natsConnect(t)
	subj := uniqueName(t, "s")
	auto := syncSub(t, nc, subj)
	if err := auto.AutoUnsubscribe(2); err != nil {
		t.Fatal(err)
	}
	gone := syncSub(t, nc, subj)
	if err := gone.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	witness := syncSub(t, nc, subj)
	for i := 0; i < 3; i++ {
		if err := nc.Publish(subj, []byte{byte('0' + i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		if m := nextMsg(t, witness); string(m.Data) != string([]byte{byte('0' + i)}) {
			t.Fatalf("witness message %d: %q", i, m.Data)
		}
	}
	nextMsg(t, auto)
	nextMsg(t, auto)
	if _, err := auto.NextMsg(quietWindow); err == nil {
		t.Fatal("auto-unsubscribed subscription got a third message")
	}
}

func TestCoreRequestReply(t *testing.T) {
	server, client := natsConnect(t), natsConnect(t)
	subj := uniqueName(t, "svc")
	if _, err := server.Subscribe(subj, func(m *nats.Msg) {
		_ = m.Respond(append([]byte("re: "), m.Data...))
	}); err != nil {
		t.Fatal(err)
	}
	flush(t, server)
	// Several requests in a row exercise the multiplexed response inbox of nats.go.
	for _, q := range []string{"one", "two", "three"} {
		m, err := client.Request(subj, []byte(q), waitTimeout)
		if err != nil {
			t.Fatalf("request %q: %v", q, err)
		}
		if string(m.Data) != "re: "+q {
			t.Fatalf("reply %q to %q", m.Data, q)
		}
	}
	// Old-style request with a unique inbox.
	inbox := nats.NewInbox()
	replies := syncSub(t, client, inbox)
	if err := replies.AutoUnsubscribe(1); err != nil {
		t.Fatal(err)
	}
	if err := client.PublishRequest(subj, inbox, []byte("four")); err != nil {
		t.Fatal(err)
	}
	if m := nextMsg(t, replies); string(m.Data) != "re: four" {
		t.Fatalf("reply %q", m.Data)
	}
}

func TestCoreNoResponders(t *testing.T) {
	nc := natsConnect(t)
	_, err := nc.Request(uniqueName(t, "nobody"), []byte("hello?"), waitTimeout)
	if !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("request to nobody: %v, want %v", err, nats.ErrNoResponders)
	}
}

func TestCoreQueueSubscription(t *testing.T) {
	pubConn, c1, c2 := natsConnect(t), natsConnect(t), natsConnect(t)
	subj := uniqueName(t, "q")
	counts := make(chan int, 1024)
	members := []*nats.Subscription{}
	for i, nc := range []*nats.Conn{c1, c1, c2} {
		sub, err := nc.QueueSubscribe(subj, "workers", func(i int) nats.MsgHandler {
			return func(*nats.Msg) { counts <- i }
		}(i))
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, sub)
	}
	plain := syncSub(t, c2, subj)
	flush(t, c1)
	flush(t, c2)

	const n = 90
	for i := 0; i < n; i++ {
		if err := pubConn.Publish(subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, pubConn)
	got := 0
	deadline := time.After(waitTimeout)
	for got < n {
		select {
		case <-counts:
			got++
		case <-deadline:
			t.Fatalf("queue group got %d of %d messages", got, n)
		}
	}
	for i := 0; i < n; i++ {
		nextMsg(t, plain)
	}
	// Each message went to exactly one member: nothing more arrives.
	select {
	case <-counts:
		t.Fatal("a queue group got more messages than were published")
	case <-time.After(quietWindow):
	}
	noMsg(t, plain)
	for _, m := range members {
		if n, _ := m.Delivered(); n == 0 {
			t.Logf("member on %q got no message (allowed: members are picked at random)", m.Subject)
		}
	}
}

func TestCoreHeaders(t *testing.T) {
	pubConn, subConn := natsConnect(t), natsConnect(t)
	subj := uniqueName(t, "h")
	sub := syncSub(t, subConn, subj)
	flush(t, subConn)
	msg := nats.NewMsg(subj)
	msg.Header.Set("X-Single", "one")
	msg.Header.Add("X-Multi", "a")
	msg.Header.Add("X-Multi", "b")
	msg.Data = []byte("with headers")
	if err := pubConn.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	m := nextMsg(t, sub)
	if string(m.Data) != "with headers" {
		t.Errorf("data %q", m.Data)
	}
	if got := m.Header.Get("X-Single"); got != "one" {
		t.Errorf("X-Single = %q", got)
	}
	if got := m.Header.Values("X-Multi"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("X-Multi = %q", got)
	}
	// Headers with an empty payload, and a plain message after it.
	empty := nats.NewMsg(subj)
	empty.Header.Set("Only", "header")
	if err := pubConn.PublishMsg(empty); err != nil {
		t.Fatal(err)
	}
	if err := pubConn.Publish(subj, []byte("plain")); err != nil {
		t.Fatal(err)
	}
	if m := nextMsg(t, sub); m.Header.Get("Only") != "header" || len(m.Data) != 0 {
		t.Errorf("header-only message: header %v data %q", m.Header, m.Data)
	}
	if m := nextMsg(t, sub); string(m.Data) != "plain" || len(m.Header) != 0 {
		t.Errorf("plain message: header %v data %q", m.Header, m.Data)
	}
}

func TestCoreEchoOff(t *testing.T) {
	nc := natsConnect(t, nats.NoEcho())
	other := natsConnect(t)
	subj := uniqueName(t, "e")
	own := syncSub(t, nc, subj)
	flush(t, nc)
	if err := nc.Publish(subj, []byte("mine")); err != nil {
		t.Fatal(err)
	}
	if err := other.Publish(subj, []byte("theirs")); err != nil {
		t.Fatal(err)
	}
	if m := nextMsg(t, own); string(m.Data) != "theirs" {
		t.Fatalf("no-echo connection got %q first", m.Data)
	}
	noMsg(t, own)
}

func TestCoreMaxPayloadEnforced(t *testing.T) {
	nc := natsConnect(t)
	big := make([]byte, nc.MaxPayload()+1)
	if err := nc.Publish(uniqueName(t, "big"), big); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("oversized publish: %v, want %v", err, nats.ErrMaxPayload)
	}
}
