package interop

import (
	"errors"
	"testing"

	"github.com/nats-io/stan.go"
)

// TestDurableResume takes a durable offline with one unacknowledged message, publishes while
// it is offline and resumes it: the resumed durable gets the pending message (flagged
// redelivered) and then only the messages it missed.
func TestDurableResume(t *testing.T) {
	tests := []struct {
		name    string
		offline func(t *testing.T, sc stan.Conn, sub stan.Subscription)
		newConn bool
	}{
		{name: "subscription_close", offline: func(t *testing.T, _ stan.Conn, sub stan.Subscription) {
			if err := sub.Close(); err != nil {
				t.Fatalf("sub close: %v", err)
			}
		}},
		{name: "connection_close", newConn: true, offline: func(t *testing.T, sc stan.Conn, _ stan.Subscription) {
			if err := sc.Close(); err != nil {
				t.Fatalf("conn close: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := uniqueName(t, "ch")
			id := uniqueName(t, "c")
			pub := stanConnect(t, uniqueName(t, "pub"))
			sc := stanConnect(t, id)
			subOpts := []stan.SubscriptionOption{
				stan.DurableName("dur"), stan.SetManualAckMode(), stan.AckWait(stan.DefaultAckWait),
			}

			c1 := newCollector()
			sub := subscribe(t, sc, ch, c1, append(subOpts, stan.DeliverAllAvailable())...)
			publishRange(t, pub, ch, 1, 3)
			msgs := c1.expectSeqs(t, 1, 2, 3)
			ack(t, msgs[0])
			ack(t, msgs[1])
			// Make sure the acks reached the server before the durable goes offline: a
			// round trip on the same NATS connection orders them.
			if err := sc.NatsConn().Flush(); err != nil {
				t.Fatal(err)
			}
			tc.offline(t, sc, sub)

			publishRange(t, pub, ch, 4, 5)
			if tc.newConn {
				sc = stanConnect(t, id)
			}
			c2 := newCollector()
			// The start position of a resumed durable is ignored.
			subscribe(t, sc, ch, c2, append(subOpts, stan.StartAt(0))...)
			got := c2.expectSeqs(t, 3, 4, 5)
			if !got[0].Redelivered {
				t.Errorf("pending seq 3 not flagged redelivered on resume")
			}
			for _, m := range got[1:] {
				if m.Redelivered {
					t.Errorf("missed seq %d flagged redelivered", m.Sequence)
				}
			}
			for _, m := range got {
				ack(t, m)
			}
			publishRange(t, pub, ch, 6, 6)
			c2.expectSeqs(t, 6)
			c2.expectNone(t)
			c1.expectNone(t)
		})
	}
}

func TestDurableIdentityIncludesClientID(t *testing.T) {
	ch := uniqueName(t, "ch")
	a := stanConnect(t, uniqueName(t, "a"))
	b := stanConnect(t, uniqueName(t, "b"))
	ca := newCollector()
	subA := subscribe(t, a, ch, ca, stan.DurableName("dur"), stan.DeliverAllAvailable())
	publishRange(t, a, ch, 1, 2)
	ca.expectSeqs(t, 1, 2)
	if err := subA.Close(); err != nil {
		t.Fatal(err)
	}
	// Same durable name, other client: a separate durable whose start position applies.
	cb := newCollector()
	subscribe(t, b, ch, cb, stan.DurableName("dur"), stan.StartWithLastReceived())
	cb.expectSeqs(t, 2)
	cb.expectNone(t)
}

func TestDuplicateDurable(t *testing.T) {
	sc := stanConnect(t, uniqueName(t, "c"))
	ch := uniqueName(t, "ch")
	subscribe(t, sc, ch, newCollector(), stan.DurableName("dur"))
	_, err := sc.Subscribe(ch, func(*stan.Msg) {}, stan.DurableName("dur"))
	wantErr(t, err, "stan: duplicate durable registration")
	// Another durable name on the same channel is fine.
	subscribe(t, sc, ch, newCollector(), stan.DurableName("dur2"))
}

// TestUnsubscribeVsClose contrasts the two ways of ending a durable subscription: Close keeps
// the durable (a resume continues where it stopped), Unsubscribe deletes it (a new
// subscription with the same name starts over from its own start position).
func TestUnsubscribeVsClose(t *testing.T) {
	tests := []struct {
		name       string
		end        func(stan.Subscription) error
		wantResume []uint64
	}{
		{name: "close_keeps_durable", end: stan.Subscription.Close, wantResume: []uint64{4}},
		{name: "unsubscribe_deletes_durable", end: stan.Subscription.Unsubscribe, wantResume: []uint64{1, 2, 3, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := stanConnect(t, uniqueName(t, "c"))
			ch := uniqueName(t, "ch")
			c1 := newCollector()
			sub := subscribe(t, sc, ch, c1, stan.DurableName("dur"), stan.DeliverAllAvailable())
			publishRange(t, sc, ch, 1, 3)
			c1.expectSeqs(t, 1, 2, 3)
			if err := sc.NatsConn().Flush(); err != nil { // auto-acks reach the server first
				t.Fatal(err)
			}
			if err := tc.end(sub); err != nil {
				t.Fatalf("ending subscription: %v", err)
			}
			if err := tc.end(sub); !errors.Is(err, stan.ErrBadSubscription) {
				t.Fatalf("second call: %v, want %v", err, stan.ErrBadSubscription)
			}
			publishRange(t, sc, ch, 4, 4)
			c2 := newCollector()
			subscribe(t, sc, ch, c2, stan.DurableName("dur"), stan.DeliverAllAvailable())
			c2.expectSeqs(t, tc.wantResume...)
			c2.expectNone(t)
			c1.expectNone(t)
		})
	}
}

// TestPlainSubscriptionEnd checks that a non-durable subscription gets nothing more after
// Close or Unsubscribe, and that resubscribing does not resume it.
func TestPlainSubscriptionEnd(t *testing.T) {
	tests := []struct {
		name string
		end  func(stan.Subscription) error
	}{
		{"close", stan.Subscription.Close},
		{"unsubscribe", stan.Subscription.Unsubscribe},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := stanConnect(t, uniqueName(t, "c"))
			ch := uniqueName(t, "ch")
			c1 := newCollector()
			sub := subscribe(t, sc, ch, c1, stan.SetManualAckMode())
			publishRange(t, sc, ch, 1, 1)
			c1.expectSeqs(t, 1) // left unacknowledged
			if err := tc.end(sub); err != nil {
				t.Fatalf("ending subscription: %v", err)
			}
			witness := newCollector()
			subscribe(t, sc, ch, witness)
			publishRange(t, sc, ch, 2, 2)
			witness.expectSeqs(t, 2)
			c1.expectNone(t)
			witness.expectNone(t) // the unacknowledged seq 1 is not handed to anyone
		})
	}
}
