package interop

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/nats-io/stan.go"
	"github.com/nats-io/stan.go/pb"
)

// TestSubscribeErrorsStanGo: the server's answers to bad subscriptions that stan.go sends
// as given (it checks none of these itself).
func TestSubscribeErrorsStanGo(t *testing.T) {
	sc := stanConnect(t, uniqueName(t, "c"))
	good := uniqueName(t, "ch")
	const (
		badSubject  = "stan: invalid subject"
		badAckWait  = "stan: invalid ack wait time, should be >= 1s"
		badInflight = "stan: invalid MaxInflight, should be >= 1"
	)
	tests := []struct {
		name    string
		channel string
		opts    []stan.SubscriptionOption
		want    string
	}{
		{"wildcard_star", "foo.*", nil, badSubject},
		{"wildcard_gt", "foo.>", nil, badSubject},
		{"empty_token", "foo..bar", nil, badSubject},
		{"leading_dot", ".foo", nil, badSubject},
		{"trailing_dot", "foo.", nil, badSubject},
		{"empty", "", nil, badSubject},
		{"ack_wait_below_1s", good, []stan.SubscriptionOption{stan.AckWait(500 * time.Millisecond)}, badAckWait},
		{"max_inflight_0", good, []stan.SubscriptionOption{stan.MaxInflight(0)}, badInflight},
		{"max_inflight_negative", good, []stan.SubscriptionOption{stan.MaxInflight(-1)}, badInflight},
		{"start_position_out_of_range", good, []stan.SubscriptionOption{stan.StartAt(pb.StartPosition(42))}, "stan: invalid start position"},
		// Checks run in a fixed order: ack wait, max in flight, start position, subject.
		{"order_ack_wait_first", "foo.*", []stan.SubscriptionOption{stan.AckWait(0), stan.MaxInflight(0), stan.StartAt(pb.StartPosition(42))}, badAckWait},
		{"order_inflight_before_start", "foo.*", []stan.SubscriptionOption{stan.MaxInflight(0), stan.StartAt(pb.StartPosition(42))}, badInflight},
		{"order_start_before_subject", "foo.*", []stan.SubscriptionOption{stan.StartAt(pb.StartPosition(-1))}, "stan: invalid start position"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub, err := sc.Subscribe(tc.channel, func(*stan.Msg) {}, tc.opts...)
			if err == nil {
				_ = sub.Unsubscribe()
			}
			wantErr(t, err, tc.want)
		})
	}
	t.Run("connection_still_usable", func(t *testing.T) {
		c := newCollector()
		subscribe(t, sc, good, c)
		publishRange(t, sc, good, 1, 1)
		c.expectSeqs(t, 1)
	})
}

// TestSubscribeErrorsRaw: requests stan.go never sends, built by hand.
func TestSubscribeErrorsRaw(t *testing.T) {
	nc := natsConnect(t)
	s := rawConnect(t, nc, uniqueName(t, "c"))
	ch := uniqueName(t, "ch")

	t.Run("garbage", func(t *testing.T) {
		r := decodeSubResponse(t, rawRequest(t, nc, s.resp.SubRequests, []byte{0xff, 0xff, 0xff}))
		if r.Error != "stan: invalid subscription request" || r.AckInbox != "" {
			t.Fatalf("got %+v", r)
		}
	})
	tests := []struct {
		name   string
		modify func(*pb.SubscriptionRequest)
		want   string
	}{
		{"client_id_missing", func(r *pb.SubscriptionRequest) { r.ClientID = "" }, "stan: clientID missing"},
		{"client_id_missing_checked_first", func(r *pb.SubscriptionRequest) {
			r.ClientID, r.AckWaitInSecs, r.MaxInFlight, r.Subject = "", 0, 0, "a.*"
		}, "stan: clientID missing"},
		{"ack_wait_0", func(r *pb.SubscriptionRequest) { r.AckWaitInSecs = 0 }, "stan: invalid ack wait time, should be >= 1s"},
		{"ack_wait_negative", func(r *pb.SubscriptionRequest) { r.AckWaitInSecs = -100 }, "stan: invalid ack wait time, should be >= 1s"},
		{"unknown_client_id", func(r *pb.SubscriptionRequest) { r.ClientID = "nobody-" + nuid.Next() }, "stan: unknown clientID"},
		{"subject_checked_before_client", func(r *pb.SubscriptionRequest) {
			r.ClientID, r.Subject = "nobody-"+nuid.Next(), "a..b"
		}, "stan: invalid subject"},
		{"durable_queue_colon", func(r *pb.SubscriptionRequest) { r.QGroup, r.DurableName = "g", "x:y" },
			"stan: durable name of a durable queue subscriber can't contain the character ':'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := s.validSubRequest(ch)
			tc.modify(req)
			r := s.subscribeRequest(t, req)
			if r.Error != tc.want {
				t.Fatalf("error %q, want %q", r.Error, tc.want)
			}
			if r.AckInbox != "" {
				t.Fatalf("refused subscription got ack inbox %q", r.AckInbox)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		r := s.subscribeRequest(t, s.validSubRequest(ch))
		if r.Error != "" || r.AckInbox == "" {
			t.Fatalf("valid request answered %+v", r)
		}
	})
}

// TestUnsubscribeErrorsRaw covers the unsubscribe and subscription-close subjects.
func TestUnsubscribeErrorsRaw(t *testing.T) {
	nc := natsConnect(t)
	s := rawConnect(t, nc, uniqueName(t, "c"))
	other := rawConnect(t, nc, uniqueName(t, "other"))
	ch := uniqueName(t, "ch")

	newSub := func(t *testing.T) (deliveryInbox, ackInbox string) {
		t.Helper()
		req := s.validSubRequest(ch)
		r := s.subscribeRequest(t, req)
		if r.Error != "" {
			t.Fatalf("subscribe: %s", r.Error)
		}
		return req.Inbox, r.AckInbox
	}
	unsub := func(t *testing.T, subject string, req *pb.UnsubscribeRequest) string {
		t.Helper()
		return decodeSubResponse(t, rawRequest(t, nc, subject, mustMarshal(t, req))).Error
	}
	kinds := []struct {
		name    string
		subject string
	}{
		{"unsubscribe", s.resp.UnsubRequests},
		{"sub_close", s.resp.SubCloseRequests},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Run("garbage", func(t *testing.T) {
				r := decodeSubResponse(t, rawRequest(t, nc, k.subject, []byte{0xff, 0xff, 0xff}))
				if r.Error != "stan: invalid unsubscribe request" {
					t.Fatalf("error %q", r.Error)
				}
			})
			_, ackInbox := newSub(t)
			t.Run("unknown_channel", func(t *testing.T) {
				got := unsub(t, k.subject, &pb.UnsubscribeRequest{ClientID: s.clientID, Subject: "nope-" + nuid.Next(), Inbox: ackInbox})
				if got != "stan: unknown channel" {
					t.Fatalf("error %q", got)
				}
			})
			t.Run("unknown_inbox", func(t *testing.T) {
				got := unsub(t, k.subject, &pb.UnsubscribeRequest{ClientID: s.clientID, Subject: ch, Inbox: nats.NewInbox()})
				if got != "stan: invalid subscription" {
					t.Fatalf("error %q", got)
				}
			})
			t.Run("unregistered_client_id", func(t *testing.T) {
				got := unsub(t, k.subject, &pb.UnsubscribeRequest{ClientID: "nobody-" + nuid.Next(), Subject: ch, Inbox: ackInbox})
				if got != "stan: unknown clientID" {
					t.Fatalf("error %q", got)
				}
			})
			t.Run("client_not_owner", func(t *testing.T) {
				got := unsub(t, k.subject, &pb.UnsubscribeRequest{ClientID: other.clientID, Subject: ch, Inbox: ackInbox})
				if got != "stan: unknown clientID" {
					t.Fatalf("error %q", got)
				}
			})
			t.Run("by_ack_inbox_then_again", func(t *testing.T) {
				if got := unsub(t, k.subject, &pb.UnsubscribeRequest{ClientID: s.clientID, Subject: ch, Inbox: ackInbox}); got != "" {
					t.Fatalf("first: error %q", got)
				}
				if got := unsub(t, k.subject, &pb.UnsubscribeRequest{ClientID: s.clientID, Subject: ch, Inbox: ackInbox}); got != "stan: invalid subscription" {
					t.Fatalf("second: error %q", got)
				}
			})
			t.Run("by_delivery_inbox", func(t *testing.T) {
				inbox, _ := newSub(t)
				if got := unsub(t, k.subject, &pb.UnsubscribeRequest{ClientID: s.clientID, Subject: ch, Inbox: inbox}); got != "" {
					t.Fatalf("error %q", got)
				}
			})
		})
	}
}

// TestChannelCaseConflict: channel names are unique without regard to case; the error text
// (including its misspelling) is what the official server sends.
func TestChannelCaseConflict(t *testing.T) {
	sc := stanConnect(t, uniqueName(t, "c"))
	lower := "case-" + strings.ToLower(nuid.Next())
	upper := strings.ToUpper(lower)
	want := `rejecting channel "` + upper + `" because channel "` + lower + `" alreay exists (different cases not allowed)`
	publishRange(t, sc, lower, 1, 1)
	wantErr(t, sc.Publish(upper, []byte("x")), want)
	_, err := sc.Subscribe(upper, func(*stan.Msg) {})
	wantErr(t, err, want)
	// The existing channel is unaffected.
	c := newCollector()
	subscribe(t, sc, lower, c, stan.DeliverAllAvailable())
	c.expectSeqs(t, 1)
}

// TestAckValidation: acks that are undecodable or name another channel are ignored (the
// message stays pending and is redelivered); a correct ack releases the subscription.
func TestAckValidation(t *testing.T) {
	nc := natsConnect(t)
	s := rawConnect(t, nc, uniqueName(t, "c"))
	ch := uniqueName(t, "ch")
	req := s.validSubRequest(ch)
	req.MaxInFlight, req.AckWaitInSecs, req.StartPosition = 1, 1, pb.StartPosition_First
	deliveries, err := nc.SubscribeSync(req.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	r := s.subscribeRequest(t, req)
	if r.Error != "" {
		t.Fatalf("subscribe: %s", r.Error)
	}
	for i := 1; i <= 2; i++ {
		if a := s.publish(t, ch, &pb.PubMsg{ClientID: s.clientID, ConnID: s.connID, Guid: nuid.Next(), Subject: ch, Data: payload(i)}); a.Error != "" {
			t.Fatalf("publish: %s", a.Error)
		}
	}
	next := func(t *testing.T, within time.Duration) *pb.MsgProto {
		t.Helper()
		m, err := deliveries.NextMsg(within)
		if err != nil {
			t.Fatalf("waiting for a delivery: %v", err)
		}
		p := &pb.MsgProto{}
		if err := p.Unmarshal(m.Data); err != nil {
			t.Fatalf("decode MsgProto: %v", err)
		}
		return p
	}
	if m := next(t, waitTimeout); m.Sequence != 1 || m.Redelivered {
		t.Fatalf("first delivery: seq %d redelivered=%v", m.Sequence, m.Redelivered)
	}
	for _, bad := range [][]byte{
		{0xff, 0xff, 0xff},
		mustMarshal(t, &pb.Ack{Subject: ch + "-other", Sequence: 1}),
		mustMarshal(t, &pb.Ack{Subject: ch, Sequence: 99}),
	} {
		if err := nc.Publish(r.AckInbox, bad); err != nil {
			t.Fatal(err)
		}
	}
	// Still pending: redelivered after the ack wait, and seq 2 is held back (MaxInflight 1).
	if m := next(t, time.Second+2*time.Second); m.Sequence != 1 || !m.Redelivered {
		t.Fatalf("after bad acks: seq %d redelivered=%v, want seq 1 redelivered", m.Sequence, m.Redelivered)
	}
	if err := nc.Publish(r.AckInbox, mustMarshal(t, &pb.Ack{Subject: ch, Sequence: 1})); err != nil {
		t.Fatal(err)
	}
	if m := next(t, waitTimeout); m.Sequence != 2 || m.Redelivered {
		t.Fatalf("after the ack: seq %d redelivered=%v, want fresh seq 2", m.Sequence, m.Redelivered)
	}
}

// TestPingIgnoredWhenInvalid: empty or undecodable PINGs get no answer at all.
func TestPingIgnoredWhenInvalid(t *testing.T) {
	nc := natsConnect(t)
	s := rawConnect(t, nc, uniqueName(t, "c"))
	for name, data := range map[string][]byte{"empty": nil, "garbage": {0xff, 0xff, 0xff}} {
		t.Run(name, func(t *testing.T) {
			if m, err := nc.Request(s.resp.PingRequests, data, quietWindow); !errors.Is(err, nats.ErrTimeout) {
				t.Fatalf("got reply %v / error %v, want a timeout", m, err)
			}
		})
	}
}

// TestPublishReplyField: PubMsg.reply is handed to subscribers in MsgProto.reply.
func TestPublishReplyField(t *testing.T) {
	nc := natsConnect(t)
	s := rawConnect(t, nc, uniqueName(t, "c"))
	ch := uniqueName(t, "ch")
	sc := stanConnect(t, uniqueName(t, "sub"))
	c := newCollector()
	subscribe(t, sc, ch, c)
	if a := s.publish(t, ch, &pb.PubMsg{ClientID: s.clientID, Guid: nuid.Next(), Subject: ch, Reply: "reply.to.me", Data: []byte("x")}); a.Error != "" {
		t.Fatalf("publish: %s", a.Error)
	}
	if m := c.next(t); m.Reply != "reply.to.me" || m.Sequence != 1 {
		t.Fatalf("got seq %d reply %q", m.Sequence, m.Reply)
	}
}
