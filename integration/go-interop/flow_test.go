package interop

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/stan.go"
)

// minAckWait is the shortest ack wait stan.go can express (it sends whole seconds).
const minAckWait = time.Second

// TestAckWaitRedelivery: an unacknowledged message comes back after the ack wait, flagged
// redelivered with a growing redelivery count; an acknowledged one never does.
func TestAckWaitRedelivery(t *testing.T) {
	sc := stanConnect(t, uniqueName(t, "c"))
	ch := uniqueName(t, "ch")
	c := newCollector()
	subscribe(t, sc, ch, c, stan.SetManualAckMode(), stan.AckWait(minAckWait), stan.DeliverAllAvailable())
	publishRange(t, sc, ch, 1, 2)
	first := c.expectSeqs(t, 1, 2)
	for _, m := range first {
		if m.Redelivered || m.RedeliveryCount != 0 {
			t.Fatalf("first delivery of seq %d: redelivered=%v count=%d", m.Sequence, m.Redelivered, m.RedeliveryCount)
		}
	}
	ack(t, first[0]) // seq 2 stays unacknowledged
	firstAt := time.Now()

	// The scenario is about time: each wait is bounded by the ack wait plus a margin.
	bound := minAckWait + 2*time.Second
	for round := uint32(1); round <= 2; round++ {
		m := c.nextWithin(t, bound)
		if m.Sequence != 2 {
			t.Fatalf("redelivery round %d: seq %d, want 2 (seq 1 was acknowledged)", round, m.Sequence)
		}
		if !m.Redelivered || m.RedeliveryCount != round {
			t.Fatalf("redelivery round %d: redelivered=%v count=%d", round, m.Redelivered, m.RedeliveryCount)
		}
		if string(m.Data) != string(payload(2)) {
			t.Fatalf("redelivery round %d: data %q", round, m.Data)
		}
		if round == 1 && time.Since(firstAt) < minAckWait/2 {
			t.Fatalf("redelivered after %v, well before the %v ack wait", time.Since(firstAt), minAckWait)
		}
		if round == 2 {
			ack(t, m)
		}
	}
	// Acknowledged: no further redelivery across more than one ack wait.
	c.expectNoneFor(t, minAckWait+500*time.Millisecond)
}

// TestManualAckInAutoMode is stan.go's own check, kept to document the client error text.
func TestManualAckInAutoMode(t *testing.T) {
	sc := stanConnect(t, uniqueName(t, "c"))
	ch := uniqueName(t, "ch")
	c := newCollector()
	subscribe(t, sc, ch, c)
	publishRange(t, sc, ch, 1, 1)
	m := c.next(t)
	if err := m.Ack(); !errors.Is(err, stan.ErrManualAck) {
		t.Fatalf("ack in auto mode: %v, want %v", err, stan.ErrManualAck)
	}
}

// TestMaxInFlight: with manual acks the server never has more than MaxInflight messages
// unacknowledged towards the subscription, and each ack lets exactly one more through.
func TestMaxInFlight(t *testing.T) {
	const maxInFlight = 3
	sc := stanConnect(t, uniqueName(t, "c"))
	ch := uniqueName(t, "ch")
	c := newCollector()
	subscribe(t, sc, ch, c, stan.SetManualAckMode(), stan.MaxInflight(maxInFlight),
		stan.AckWait(stan.DefaultAckWait), stan.DeliverAllAvailable())
	publishRange(t, sc, ch, 1, 10)

	outstanding := c.expectSeqs(t, 1, 2, 3)
	c.expectNone(t)
	ack(t, outstanding[0])
	outstanding = append(outstanding[1:], c.expectSeqs(t, 4)...)
	c.expectNone(t)
	for _, m := range outstanding {
		ack(t, m)
	}
	outstanding = c.expectSeqs(t, 5, 6, 7)
	c.expectNone(t)
	for _, m := range outstanding {
		ack(t, m)
	}
	for _, m := range c.expectSeqs(t, 8, 9, 10) {
		ack(t, m)
	}
	c.expectNone(t)
}

// TestMaxInFlightOneAutoAck: auto-acks keep a MaxInflight(1) subscription flowing in order.
func TestMaxInFlightOneAutoAck(t *testing.T) {
	sc := stanConnect(t, uniqueName(t, "c"))
	ch := uniqueName(t, "ch")
	publishRange(t, sc, ch, 1, 50)
	c := newCollector()
	subscribe(t, sc, ch, c, stan.MaxInflight(1), stan.DeliverAllAvailable())
	c.expectSeqs(t, seqRange(1, 50)...)
	c.expectNone(t)
}

// TestRedeliveryIgnoresMaxInFlight: a stalled subscription still gets its expired messages
// again, while new messages wait for an ack.
func TestRedeliveryIgnoresMaxInFlight(t *testing.T) {
	sc := stanConnect(t, uniqueName(t, "c"))
	ch := uniqueName(t, "ch")
	c := newCollector()
	subscribe(t, sc, ch, c, stan.SetManualAckMode(), stan.MaxInflight(1), stan.AckWait(minAckWait), stan.DeliverAllAvailable())
	publishRange(t, sc, ch, 1, 2)
	c.expectSeqs(t, 1)
	m := c.nextWithin(t, minAckWait+2*time.Second)
	if m.Sequence != 1 || !m.Redelivered {
		t.Fatalf("got seq %d redelivered=%v, want seq 1 redelivered while stalled", m.Sequence, m.Redelivered)
	}
	ack(t, m)
	if m := c.next(t); m.Sequence != 2 || m.Redelivered {
		t.Fatalf("after ack got seq %d redelivered=%v, want fresh seq 2", m.Sequence, m.Redelivered)
	}
}

// TestQueueAckWaitRedelivery: an expired message of a queue member is redelivered to the
// group (to some member), flagged redelivered, exactly once per expiry.
func TestQueueAckWaitRedelivery(t *testing.T) {
	sc := stanConnect(t, uniqueName(t, "c"))
	ch := uniqueName(t, "ch")
	a, b := newCollector(), newCollector()
	o := []stan.SubscriptionOption{stan.SetManualAckMode(), stan.AckWait(minAckWait)}
	queueSubscribe(t, sc, ch, "g", a, o...)
	queueSubscribe(t, sc, ch, "g", b, o...)
	publishRange(t, sc, ch, 1, 1)
	seen, _ := drainAll(t, 1, a, b)
	if seen[1] != 1 {
		t.Fatalf("first delivery: %v", seen)
	}
	// Not acknowledged: it comes back after the ack wait, to one member only.
	var redelivered *stan.Msg
	select {
	case redelivered = <-a.ch:
	case redelivered = <-b.ch:
	case <-time.After(minAckWait + 2*time.Second):
		t.Fatal("no redelivery to the group")
	}
	if redelivered.Sequence != 1 || !redelivered.Redelivered {
		t.Fatalf("got seq %d redelivered=%v", redelivered.Sequence, redelivered.Redelivered)
	}
	ack(t, redelivered)
	a.expectNoneFor(t, minAckWait+500*time.Millisecond)
	b.expectNone(t)
}

// TestDurableResumeTakesNewOptions: a resumed durable uses the MaxInflight of the new request.
func TestDurableResumeTakesNewOptions(t *testing.T) {
	sc := stanConnect(t, uniqueName(t, "c"))
	ch := uniqueName(t, "ch")
	sub := subscribe(t, sc, ch, newCollector(), stan.DurableName("dur"), stan.MaxInflight(100))
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	publishRange(t, sc, ch, 1, 3)
	c := newCollector()
	subscribe(t, sc, ch, c, stan.DurableName("dur"), stan.SetManualAckMode(), stan.MaxInflight(1), stan.AckWait(stan.DefaultAckWait))
	m := c.expectSeqs(t, 1)[0]
	c.expectNone(t)
	ack(t, m)
	c.expectSeqs(t, 2)
}
