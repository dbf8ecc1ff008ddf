package interop

import (
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/nats-io/stan.go"
	"github.com/nats-io/stan.go/pb"
)

// shortHeartbeats returns how long the server needs to close a client whose heartbeat inbox
// has no subscriber, from STAN_HB_DETECT (a Go duration, set when the server runs with short
// heartbeat settings), or skips the test.
func shortHeartbeats(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("STAN_HB_DETECT")
	if v == "" {
		t.Skip("STAN_HB_DETECT not set: the server uses default (minutes-long) heartbeats")
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("STAN_HB_DETECT=%q: %v", v, err)
	}
	return d
}

// TestHeartbeatExpiry: a client that never answers heartbeats is closed by the server. Its
// connID is then unknown to PINGs, its plain subscriptions are gone and its durable stays
// (offline) for the next session of the same client ID.
func TestHeartbeatExpiry(t *testing.T) {
	detect := shortHeartbeats(t)
	nc := natsConnect(t)
	id := uniqueName(t, "c")
	ch := uniqueName(t, "ch")
	connID := []byte(nuid.Next())
	// The heartbeat inbox has no subscriber: every heartbeat fails at once.
	r := rawConnectRequest(t, nc, &pb.ConnectRequest{
		ClientID: id, HeartbeatInbox: nats.NewInbox(), Protocol: 1, ConnID: connID, PingInterval: 5, PingMaxOut: 88,
	})
	if r.Error != "" {
		t.Fatalf("connect: %s", r.Error)
	}
	s := &rawSession{nc: nc, clientID: id, connID: connID, resp: r}
	durReq := s.validSubRequest(ch)
	durReq.DurableName = "dur"
	durReq.StartPosition = pb.StartPosition_First
	if sr := s.subscribeRequest(t, durReq); sr.Error != "" {
		t.Fatalf("durable subscribe: %s", sr.Error)
	}

	ping := mustMarshal(t, &pb.Ping{ConnID: connID})
	deadline := time.Now().Add(detect + waitTimeout)
	for {
		pr := &pb.PingResponse{}
		if err := pr.Unmarshal(rawRequest(t, nc, r.PingRequests, ping)); err != nil {
			t.Fatal(err)
		}
		if pr.Error == "client has been replaced or is no longer registered" {
			break
		}
		if pr.Error != "" {
			t.Fatalf("ping error %q", pr.Error)
		}
		if time.Now().After(deadline) {
			t.Fatalf("client still registered %v after connect (expected closed within %v)", detect+waitTimeout, detect)
		}
		time.Sleep(100 * time.Millisecond) // poll interval, bounded by the deadline
	}

	// The client ID is free and the durable kept its position (nothing delivered yet).
	sc := stanConnect(t, id)
	if err := sc.Publish(ch, payload(1)); err != nil {
		t.Fatal(err)
	}
	c := newCollector()
	subscribe(t, sc, ch, c, stan.DurableName("dur"))
	c.expectSeqs(t, 1)
}
