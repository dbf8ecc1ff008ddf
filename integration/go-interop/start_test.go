package interop

import (
	"testing"
	"time"

	"github.com/nats-io/stan.go"
	"github.com/nats-io/stan.go/pb"
)

// timeGap separates the messages published before and after the reference instant of the
// time-based start positions; it only has to exceed the request latency by a wide margin.
const timeGap = 300 * time.Millisecond

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// TestStartPositions subscribes with every start position. Each case publishes `stored`
// messages (with a pause between #2 and #3 around the reference instant `mid` for the time
// cases), subscribes, publishes one more message and checks the exact sequences delivered.
func TestStartPositions(t *testing.T) {
	sc := stanConnect(t, uniqueName(t, "c"))
	tests := []struct {
		name   string
		stored int
		timed  bool
		opts   func(mid time.Time) []stan.SubscriptionOption
		want   []uint64
	}{
		{name: "new_only_default", stored: 5, opts: none, want: []uint64{6}},
		{name: "new_only_explicit", stored: 5, opts: opts(stan.StartAt(pb.StartPosition_NewOnly)), want: []uint64{6}},
		{name: "last_received", stored: 5, opts: opts(stan.StartWithLastReceived()), want: []uint64{5, 6}},
		{name: "all_available", stored: 5, opts: opts(stan.DeliverAllAvailable()), want: seqRange(1, 6)},
		{name: "first_explicit", stored: 5, opts: opts(stan.StartAt(pb.StartPosition_First)), want: seqRange(1, 6)},
		{name: "sequence_3", stored: 5, opts: opts(stan.StartAtSequence(3)), want: seqRange(3, 6)},
		{name: "sequence_last", stored: 5, opts: opts(stan.StartAtSequence(5)), want: []uint64{5, 6}},
		{name: "sequence_0_means_first", stored: 5, opts: opts(stan.StartAtSequence(0)), want: seqRange(1, 6)},
		{name: "sequence_beyond_last_means_new_only", stored: 5, opts: opts(stan.StartAtSequence(100)), want: []uint64{6}},
		{name: "time", stored: 5, timed: true, opts: func(mid time.Time) []stan.SubscriptionOption {
			return []stan.SubscriptionOption{stan.StartAtTime(mid)}
		}, want: seqRange(3, 6)},
		{name: "time_delta", stored: 5, timed: true, opts: func(mid time.Time) []stan.SubscriptionOption {
			return []stan.SubscriptionOption{stan.StartAtTimeDelta(time.Since(mid))}
		}, want: seqRange(3, 6)},
		{name: "time_delta_before_everything", stored: 5, opts: opts(stan.StartAtTimeDelta(time.Hour)), want: seqRange(1, 6)},
		{name: "time_in_future_means_new_only", stored: 5, opts: func(time.Time) []stan.SubscriptionOption {
			return []stan.SubscriptionOption{stan.StartAtTime(time.Now().Add(time.Hour))}
		}, want: []uint64{6}},
		{name: "empty_last_received", stored: 0, opts: opts(stan.StartWithLastReceived()), want: []uint64{1}},
		{name: "empty_all_available", stored: 0, opts: opts(stan.DeliverAllAvailable()), want: []uint64{1}},
		{name: "empty_sequence_5", stored: 0, opts: opts(stan.StartAtSequence(5)), want: []uint64{1}},
		{name: "empty_time_delta", stored: 0, opts: opts(stan.StartAtTimeDelta(time.Minute)), want: []uint64{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := uniqueName(t, "ch")
			var mid time.Time
			for i := 1; i <= tc.stored; i++ {
				if tc.timed && i == 3 {
					// The scenario is about time: leave a gap around the reference instant.
					time.Sleep(timeGap)
					mid = time.Now()
					time.Sleep(timeGap)
				}
				if err := sc.Publish(ch, payload(i)); err != nil {
					t.Fatalf("publish %d: %v", i, err)
				}
			}
			c := newCollector()
			subscribe(t, sc, ch, c, tc.opts(mid)...)
			if err := sc.Publish(ch, payload(tc.stored+1)); err != nil {
				t.Fatalf("publish after subscribe: %v", err)
			}
			msgs := c.expectSeqs(t, tc.want...)
			for _, m := range msgs {
				if string(m.Data) != string(payload(int(m.Sequence))) {
					t.Errorf("seq %d carries %q", m.Sequence, m.Data)
				}
			}
			c.expectNone(t)
		})
	}
}

// TestStartPositionIgnoredForQueueJoin checks that a later queue member joins at the
// group's position whatever start position it asks for.
func TestStartPositionIgnoredForQueueJoin(t *testing.T) {
	sc := stanConnect(t, uniqueName(t, "c"))
	ch := uniqueName(t, "ch")
	publishRange(t, sc, ch, 1, 3)
	a, b := newCollector(), newCollector()
	queueSubscribe(t, sc, ch, "g", a) // new-only: the group starts after seq 3
	queueSubscribe(t, sc, ch, "g", b, stan.DeliverAllAvailable())
	publishRange(t, sc, ch, 4, 4)
	var got *stan.Msg
	select {
	case got = <-a.ch:
	case got = <-b.ch:
	case <-time.After(waitTimeout):
		t.Fatal("no message for the group")
	}
	if got.Sequence != 4 {
		t.Fatalf("group delivered seq %d first, want 4 (the second member's start position must be ignored)", got.Sequence)
	}
	a.expectNone(t)
	b.expectNone(t)
}

func none(time.Time) []stan.SubscriptionOption { return nil }

func opts(o ...stan.SubscriptionOption) func(time.Time) []stan.SubscriptionOption {
	return func(time.Time) []stan.SubscriptionOption { return o }
}
