package interop

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nuid"
	"github.com/nats-io/stan.go"
	"github.com/nats-io/stan.go/pb"
)

func TestPublishSync(t *testing.T) {
	sc := stanConnect(t, uniqueName(t, "c"))
	ch := uniqueName(t, "ch")
	before := time.Now()
	publishRange(t, sc, ch, 1, 5)
	after := time.Now()

	c := newCollector()
	subscribe(t, sc, ch, c, stan.DeliverAllAvailable())
	msgs := c.expectSeqs(t, 1, 2, 3, 4, 5)
	var prev int64
	for i, m := range msgs {
		if m.Subject != ch {
			t.Errorf("seq %d: subject %q, want %q", m.Sequence, m.Subject, ch)
		}
		if !bytes.Equal(m.Data, payload(i+1)) {
			t.Errorf("seq %d: data %q, want %q", m.Sequence, m.Data, payload(i+1))
		}
		if m.Redelivered || m.RedeliveryCount != 0 {
			t.Errorf("seq %d: first delivery flagged redelivered=%v count=%d", m.Sequence, m.Redelivered, m.RedeliveryCount)
		}
		// Timestamps are the server's receive time in Unix nanoseconds.
		if m.Timestamp < before.Add(-time.Second).UnixNano() || m.Timestamp > after.Add(time.Second).UnixNano() {
			t.Errorf("seq %d: timestamp %v outside publish window [%v, %v]", m.Sequence, time.Unix(0, m.Timestamp), before, after)
		}
		if m.Timestamp < prev {
			t.Errorf("seq %d: timestamp decreased", m.Sequence)
		}
		prev = m.Timestamp
	}
}

func TestPublishEmptyAndLargePayload(t *testing.T) {
	sc := stanConnect(t, uniqueName(t, "c"))
	ch := uniqueName(t, "ch")
	c := newCollector()
	subscribe(t, sc, ch, c)
	large := bytes.Repeat([]byte("0123456789abcdef"), 64*1024/16)
	for _, data := range [][]byte{nil, large} {
		if err := sc.Publish(ch, data); err != nil {
			t.Fatalf("publish %d bytes: %v", len(data), err)
		}
	}
	msgs := c.expectSeqs(t, 1, 2)
	if len(msgs[0].Data) != 0 {
		t.Errorf("empty payload came back with %d bytes", len(msgs[0].Data))
	}
	if !bytes.Equal(msgs[1].Data, large) {
		t.Errorf("large payload changed (%d bytes back)", len(msgs[1].Data))
	}
}

func TestPublishAsync(t *testing.T) {
	sc := stanConnect(t, uniqueName(t, "c"))
	ch := uniqueName(t, "ch")
	const n = 200

	var mu sync.Mutex
	acked := make(map[string]error, n)
	done := make(chan struct{})
	handler := func(guid string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := acked[guid]; dup {
			t.Errorf("ack handler called twice for guid %s", guid)
		}
		acked[guid] = err
		if len(acked) == n {
			close(done)
		}
	}
	guids := make(map[string]bool, n)
	for i := 1; i <= n; i++ {
		guid, err := sc.PublishAsync(ch, payload(i), handler)
		if err != nil {
			t.Fatalf("publish async %d: %v", i, err)
		}
		if guid == "" || guids[guid] {
			t.Fatalf("publish async %d: guid %q empty or reused", i, guid)
		}
		guids[guid] = true
	}
	select {
	case <-done:
	case <-time.After(waitTimeout):
		mu.Lock()
		t.Fatalf("only %d of %d pub acks arrived", len(acked), n)
	}
	mu.Lock()
	for guid, err := range acked {
		if !guids[guid] {
			t.Errorf("ack for unknown guid %s", guid)
		}
		if err != nil {
			t.Errorf("ack error for %s: %v", guid, err)
		}
	}
	mu.Unlock()

	c := newCollector()
	subscribe(t, sc, ch, c, stan.DeliverAllAvailable())
	for i := 1; i <= n; i++ {
		m := c.next(t)
		if m.Sequence != uint64(i) || !bytes.Equal(m.Data, payload(i)) {
			t.Fatalf("message %d: seq %d data %q", i, m.Sequence, m.Data)
		}
	}
}

func TestPublishInvalid(t *testing.T) {
	const invalid = "stan: invalid publish request"
	sc := stanConnect(t, uniqueName(t, "c"))

	t.Run("stan_go_sync_wildcard_channel", func(t *testing.T) {
		wantErr(t, sc.Publish("foo.*", []byte("x")), invalid)
	})
	t.Run("stan_go_async_wildcard_channel", func(t *testing.T) {
		errs := make(chan error, 1)
		if _, err := sc.PublishAsync("foo.>", []byte("x"), func(_ string, err error) { errs <- err }); err != nil {
			t.Fatalf("publish async: %v", err)
		}
		select {
		case err := <-errs:
			wantErr(t, err, invalid)
		case <-time.After(waitTimeout):
			t.Fatal("no pub ack")
		}
	})

	nc := natsConnect(t)
	s := rawConnect(t, nc, uniqueName(t, "raw"))
	good := uniqueName(t, "ch")
	tests := []struct {
		name string
		msg  *pb.PubMsg
		want string
	}{
		{"valid_by_client_id", &pb.PubMsg{ClientID: s.clientID, Guid: nuid.Next(), Subject: good, Data: []byte("x")}, ""},
		{"valid_by_conn_id", &pb.PubMsg{Guid: nuid.Next(), Subject: good, ConnID: s.connID}, ""},
		{"empty_guid", &pb.PubMsg{ClientID: s.clientID, Subject: good, ConnID: s.connID}, invalid},
		{"empty_channel", &pb.PubMsg{ClientID: s.clientID, Guid: nuid.Next(), ConnID: s.connID}, invalid},
		{"leading_dot", &pb.PubMsg{ClientID: s.clientID, Guid: nuid.Next(), Subject: ".a", ConnID: s.connID}, invalid},
		{"trailing_dot", &pb.PubMsg{ClientID: s.clientID, Guid: nuid.Next(), Subject: "a.", ConnID: s.connID}, invalid},
		{"gt_wildcard", &pb.PubMsg{ClientID: s.clientID, Guid: nuid.Next(), Subject: "a.>", ConnID: s.connID}, invalid},
		{"unknown_client_id", &pb.PubMsg{ClientID: "nobody-" + nuid.Next(), Guid: nuid.Next(), Subject: good}, invalid},
		{"unknown_conn_id_wins_over_client_id", &pb.PubMsg{ClientID: s.clientID, Guid: nuid.Next(), Subject: good, ConnID: []byte(nuid.Next())}, invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := s.publish(t, "anything", tc.msg)
			if a.Error != tc.want {
				t.Fatalf("PubAck error %q, want %q", a.Error, tc.want)
			}
			if a.Guid != tc.msg.Guid {
				t.Fatalf("PubAck guid %q, want %q", a.Guid, tc.msg.Guid)
			}
		})
	}
	t.Run("garbage", func(t *testing.T) {
		a := s.publishBytes(t, "anything", []byte{0xff, 0xff, 0xff})
		if a.Error != invalid {
			t.Fatalf("PubAck error %q, want %q", a.Error, invalid)
		}
	})
	t.Run("channel_from_payload_not_subject", func(t *testing.T) {
		// The raw publishes above went to "<pubPrefix>.anything" but named channel `good`.
		c := newCollector()
		subscribe(t, sc, good, c, stan.DeliverAllAvailable())
		c.expectSeqs(t, 1, 2)
	})
}

// TestCloseAfterAsyncPublishes: a connection close is processed after the publishes the client
// sent before it, so none of them is lost or refused.
func TestCloseAfterAsyncPublishes(t *testing.T) {
	const n = 300
	sc, err := stan.Connect(clusterID(), uniqueName(t, "c"), stan.NatsURL(serverURL(t)), stan.ConnectWait(requestTimeout))
	if err != nil {
		t.Fatal(err)
	}
	ch := uniqueName(t, "ch")
	for i := 1; i <= n; i++ {
		if _, err := sc.PublishAsync(ch, payload(i), func(string, error) {}); err != nil {
			t.Fatalf("publish async %d: %v", i, err)
		}
	}
	if err := sc.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	reader := stanConnect(t, uniqueName(t, "reader"))
	c := newCollector()
	subscribe(t, reader, ch, c, stan.DeliverAllAvailable())
	c.expectSeqs(t, seqRange(1, n)...)
	c.expectNone(t)
}
