package interop

import (
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/stan.go"
)

// drainAll receives from all collectors until total messages arrived (or fails after
// waitTimeout) and returns how often each sequence was seen and how many each collector got.
func drainAll(t *testing.T, total int, cs ...*collector) (seen map[uint64]int, perMember []int) {
	t.Helper()
	seen = make(map[uint64]int)
	perMember = make([]int, len(cs))
	timeout := time.After(waitTimeout)
	cases := make([]reflect.SelectCase, 0, len(cs)+1)
	for _, c := range cs {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.ch)})
	}
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timeout)})
	for n := 0; n < total; n++ {
		i, v, _ := reflect.Select(cases)
		if i == len(cs) {
			t.Fatalf("only %d of %d messages arrived (per member %v)", n, total, perMember)
		}
		seen[v.Interface().(*stan.Msg).Sequence]++
		perMember[i]++
	}
	return seen, perMember
}

func TestQueueGroupExactlyOnce(t *testing.T) {
	ch := uniqueName(t, "ch")
	sc1 := stanConnect(t, uniqueName(t, "c1"))
	sc2 := stanConnect(t, uniqueName(t, "c2"))
	members := []*collector{newCollector(), newCollector(), newCollector()}
	queueSubscribe(t, sc1, ch, "workers", members[0])
	queueSubscribe(t, sc1, ch, "workers", members[1])
	queueSubscribe(t, sc2, ch, "workers", members[2])
	other := newCollector()
	queueSubscribe(t, sc2, ch, "others", other) // another group gets its own copy
	plain := newCollector()
	subscribe(t, sc2, ch, plain)

	const n = 60
	publishRange(t, sc1, ch, 1, n)
	seen, per := drainAll(t, n, members...)
	for s := uint64(1); s <= n; s++ {
		if seen[s] != 1 {
			t.Errorf("seq %d delivered %d times across the group", s, seen[s])
		}
	}
	for i, k := range per {
		if k == 0 {
			t.Errorf("member %d got nothing (per member %v); ties must rotate between members", i, per)
		}
	}
	other.expectSeqs(t, seqRange(1, n)...)
	plain.expectSeqs(t, seqRange(1, n)...)
	for _, c := range append(members, other, plain) {
		c.expectNoneFor(t, quietWindow/3)
	}
}

// TestQueueGroupFlowControl: members that do not ack stall at MaxInflight; the group keeps
// delivering until every member is stalled, and an ack frees exactly that member.
func TestQueueGroupFlowControl(t *testing.T) {
	ch := uniqueName(t, "ch")
	sc := stanConnect(t, uniqueName(t, "c"))
	a, b := newCollector(), newCollector()
	o := []stan.SubscriptionOption{stan.SetManualAckMode(), stan.MaxInflight(5), stan.AckWait(stan.DefaultAckWait)}
	queueSubscribe(t, sc, ch, "g", a, o...)
	queueSubscribe(t, sc, ch, "g", b, o...)
	publishRange(t, sc, ch, 1, 11)
	gotA := make([]*stan.Msg, 0, 5)
	for i := 0; i < 5; i++ {
		gotA = append(gotA, a.next(t))
	}
	for i := 0; i < 5; i++ {
		b.next(t)
	}
	a.expectNone(t) // both stalled: seq 11 waits
	b.expectNone(t)
	ack(t, gotA[0])
	m := a.next(t)
	if m.Sequence != 11 || m.Redelivered {
		t.Fatalf("after ack got seq %d redelivered=%v, want fresh seq 11", m.Sequence, m.Redelivered)
	}
	b.expectNone(t)
}

// TestQueueMemberLeaves: when a member leaves while others remain, its unacknowledged
// messages are redelivered to the remaining members.
func TestQueueMemberLeaves(t *testing.T) {
	tests := []struct {
		name  string
		leave func(t *testing.T, sc stan.Conn, sub stan.Subscription) error
	}{
		{"subscription_close", func(_ *testing.T, _ stan.Conn, sub stan.Subscription) error { return sub.Close() }},
		{"unsubscribe", func(_ *testing.T, _ stan.Conn, sub stan.Subscription) error { return sub.Unsubscribe() }},
		{"connection_close", func(_ *testing.T, sc stan.Conn, _ stan.Subscription) error { return sc.Close() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := uniqueName(t, "ch")
			scA := stanConnect(t, uniqueName(t, "a"))
			scB := stanConnect(t, uniqueName(t, "b"))
			o := []stan.SubscriptionOption{stan.SetManualAckMode(), stan.AckWait(stan.DefaultAckWait)}
			a, b := newCollector(), newCollector()
			subA := queueSubscribe(t, scA, ch, "g", a, o...)
			publishRange(t, scB, ch, 1, 2)
			a.expectSeqs(t, 1, 2) // unacknowledged
			queueSubscribe(t, scB, ch, "g", b, o...)
			if err := tc.leave(t, scA, subA); err != nil {
				t.Fatalf("leaving: %v", err)
			}
			got := b.expectSeqs(t, 1, 2)
			for _, m := range got {
				if !m.Redelivered {
					t.Errorf("handed-over seq %d not flagged redelivered", m.Sequence)
				}
				ack(t, m)
			}
			publishRange(t, scB, ch, 3, 3)
			m := b.next(t)
			if m.Sequence != 3 || m.Redelivered {
				t.Fatalf("got seq %d redelivered=%v, want fresh seq 3", m.Sequence, m.Redelivered)
			}
			b.expectNone(t)
			a.expectNone(t)
		})
	}
}

// TestQueueGroupRemovedWithLastMember: a non-durable group disappears when its last member
// leaves, so a new member starts from its own start position.
func TestQueueGroupRemovedWithLastMember(t *testing.T) {
	ch := uniqueName(t, "ch")
	sc := stanConnect(t, uniqueName(t, "c"))
	a := newCollector()
	sub := queueSubscribe(t, sc, ch, "g", a, stan.DeliverAllAvailable())
	publishRange(t, sc, ch, 1, 2)
	a.expectSeqs(t, 1, 2)
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	publishRange(t, sc, ch, 3, 3)
	b := newCollector()
	queueSubscribe(t, sc, ch, "g", b, stan.DeliverAllAvailable())
	b.expectSeqs(t, 1, 2, 3)
	b.expectNone(t)
}

// TestDurableQueueGroup: the group survives (offline, with its position and pending messages)
// when its last member closes, can be rejoined by any client, and is destroyed when its last
// member unsubscribes.
func TestDurableQueueGroup(t *testing.T) {
	tests := []struct {
		name string
		end  func(sc stan.Conn, sub stan.Subscription) error
		// wantRejoin are the sequences the next member gets after seqs 1..3 were delivered
		// (3 left unacknowledged) and 4..5 were published while the group had no member.
		wantRejoin       []uint64
		wantRedelivered3 bool
	}{
		{name: "survives_subscription_close", end: func(_ stan.Conn, s stan.Subscription) error { return s.Close() },
			wantRejoin: []uint64{3, 4, 5}, wantRedelivered3: true},
		{name: "survives_connection_close", end: func(sc stan.Conn, _ stan.Subscription) error { return sc.Close() },
			wantRejoin: []uint64{3, 4, 5}, wantRedelivered3: true},
		{name: "destroyed_by_unsubscribe", end: func(_ stan.Conn, s stan.Subscription) error { return s.Unsubscribe() },
			wantRejoin: []uint64{1, 2, 3, 4, 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := uniqueName(t, "ch")
			pub := stanConnect(t, uniqueName(t, "pub"))
			scA := stanConnect(t, uniqueName(t, "a"))
			o := []stan.SubscriptionOption{stan.DurableName("dur"), stan.SetManualAckMode(), stan.AckWait(stan.DefaultAckWait), stan.DeliverAllAvailable()}
			a := newCollector()
			subA := queueSubscribe(t, scA, ch, "g", a, o...)
			publishRange(t, pub, ch, 1, 3)
			msgs := a.expectSeqs(t, 1, 2, 3)
			ack(t, msgs[0])
			ack(t, msgs[1])
			if err := scA.NatsConn().Flush(); err != nil {
				t.Fatal(err)
			}
			if err := tc.end(scA, subA); err != nil {
				t.Fatalf("ending last member: %v", err)
			}
			publishRange(t, pub, ch, 4, 5)

			// Another client joins the same durable group.
			scB := stanConnect(t, uniqueName(t, "b"))
			b := newCollector()
			queueSubscribe(t, scB, ch, "g", b, o...)
			got := b.expectSeqs(t, tc.wantRejoin...)
			for _, m := range got {
				wantRedel := tc.wantRedelivered3 && m.Sequence == 3
				if m.Redelivered != wantRedel {
					t.Errorf("seq %d redelivered=%v, want %v", m.Sequence, m.Redelivered, wantRedel)
				}
				ack(t, m)
			}
			b.expectNone(t)
			a.expectNone(t)
		})
	}

	t.Run("durable_name_with_colon_rejected", func(t *testing.T) {
		sc := stanConnect(t, uniqueName(t, "c"))
		_, err := sc.QueueSubscribe(uniqueName(t, "ch"), "g", func(*stan.Msg) {}, stan.DurableName("a:b"))
		wantErr(t, err, "stan: durable name of a durable queue subscriber can't contain the character ':'")
	})
}
