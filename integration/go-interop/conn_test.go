package interop

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/nats-io/stan.go"
	"github.com/nats-io/stan.go/pb"
)

func TestConnectClose(t *testing.T) {
	url := serverURL(t)
	id := uniqueName(t, "c")
	sc, err := stan.Connect(clusterID(), id, stan.NatsURL(url), stan.ConnectWait(requestTimeout))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if err := sc.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	// Closing twice is a no-op for stan.go.
	if err := sc.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := sc.Publish("x", nil); !errors.Is(err, stan.ErrConnectionClosed) {
		t.Fatalf("publish after close: %v, want %v", err, stan.ErrConnectionClosed)
	}
	// The server unregistered the client: the ID is free again at once.
	sc2 := stanConnect(t, id)
	if err := sc2.Close(); err != nil {
		t.Fatalf("close of reconnected client: %v", err)
	}
}

func TestConnectWrongClusterID(t *testing.T) {
	url := serverURL(t)
	_, err := stan.Connect("no-such-cluster-"+nuid.Next(), uniqueName(t, "c"),
		stan.NatsURL(url), stan.ConnectWait(500*time.Millisecond))
	if !errors.Is(err, stan.ErrConnectReqTimeout) {
		t.Fatalf("connect to unknown cluster: %v, want %v", err, stan.ErrConnectReqTimeout)
	}
}

func TestConnectResponseFields(t *testing.T) {
	nc := natsConnect(t)
	tests := []struct {
		name                  string
		protocol              int32
		pingInterval, maxOut  int32
		wantPings             bool
		wantInterval, wantMax int32
	}{
		{name: "protocol1", protocol: 1, pingInterval: 7, maxOut: 9, wantPings: true, wantInterval: 7, wantMax: 9},
		{name: "protocol1_ms_interval_echoed", protocol: 1, pingInterval: -250, maxOut: 3, wantPings: true, wantInterval: -250, wantMax: 3},
		{name: "protocol0_no_pings", protocol: 0, pingInterval: 7, maxOut: 9, wantPings: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := uniqueName(t, "c")
			hb := nats.NewInbox()
			sub, err := nc.Subscribe(hb, func(m *nats.Msg) { _ = m.Respond(nil) })
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sub.Unsubscribe() })
			r := rawConnectRequest(t, nc, &pb.ConnectRequest{
				ClientID: id, HeartbeatInbox: hb, Protocol: tc.protocol, ConnID: []byte(nuid.Next()),
				PingInterval: tc.pingInterval, PingMaxOut: tc.maxOut,
			})
			if r.Error != "" {
				t.Fatalf("connect error %q", r.Error)
			}
			t.Cleanup(func() {
				b, _ := (&pb.CloseRequest{ClientID: id}).Marshal()
				_, _ = nc.Request(r.CloseRequests, b, requestTimeout)
			})
			for name, v := range map[string]string{
				"pubPrefix": r.PubPrefix, "subRequests": r.SubRequests, "unsubRequests": r.UnsubRequests,
				"closeRequests": r.CloseRequests, "subCloseRequests": r.SubCloseRequests,
			} {
				if v == "" {
					t.Errorf("ConnectResponse.%s is empty", name)
				}
			}
			if r.Protocol != 1 {
				t.Errorf("protocol = %d, want 1", r.Protocol)
			}
			if tc.wantPings {
				if r.PingRequests != discoverSubject()+".pings" {
					t.Errorf("pingRequests = %q, want %q", r.PingRequests, discoverSubject()+".pings")
				}
				if r.PingInterval != tc.wantInterval || r.PingMaxOut != tc.wantMax {
					t.Errorf("ping interval/maxOut = %d/%d, want %d/%d", r.PingInterval, r.PingMaxOut, tc.wantInterval, tc.wantMax)
				}
			} else if r.PingRequests != "" || r.PingInterval != 0 || r.PingMaxOut != 0 {
				t.Errorf("protocol 0 request got ping settings %q %d/%d", r.PingRequests, r.PingInterval, r.PingMaxOut)
			}
		})
	}
}

func TestConnectErrors(t *testing.T) {
	nc := natsConnect(t)
	const invalidClientID = "stan: invalid clientID: only alphanumeric and `-` or `_` characters allowed"
	tests := []struct {
		name    string
		payload func() []byte
		want    string
	}{
		{"garbage", func() []byte { return []byte{0xff, 0xff, 0xff} }, "stan: invalid connection request"},
		{"no_heartbeat_inbox", func() []byte {
			b, _ := (&pb.ConnectRequest{ClientID: "ok", Protocol: 1, ConnID: []byte(nuid.Next())}).Marshal()
			return b
		}, "stan: invalid connection request"},
		{"bad_client_id", func() []byte {
			b, _ := (&pb.ConnectRequest{ClientID: "bad id!", HeartbeatInbox: nats.NewInbox(), Protocol: 1}).Marshal()
			return b
		}, invalidClientID},
		{"empty_client_id", func() []byte {
			b, _ := (&pb.ConnectRequest{HeartbeatInbox: nats.NewInbox(), Protocol: 1}).Marshal()
			return b
		}, invalidClientID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := decodeConnectResponse(t, rawRequest(t, nc, discoverSubject(), tc.payload()))
			if r.Error != tc.want {
				t.Fatalf("error %q, want %q", r.Error, tc.want)
			}
			if r.PubPrefix != "" || r.SubRequests != "" {
				t.Fatalf("refused connect still carries subjects: %+v", r)
			}
		})
	}
	t.Run("stan_go_bad_client_id", func(t *testing.T) {
		_, err := stan.Connect(clusterID(), "bad.id", stan.NatsURL(serverURL(t)), stan.ConnectWait(requestTimeout))
		wantErr(t, err, invalidClientID)
	})
}

func TestDuplicateClientID(t *testing.T) {
	url := serverURL(t)
	id := uniqueName(t, "c")

	t.Run("rejected_while_first_alive", func(t *testing.T) {
		first := stanConnect(t, id)
		_, err := stan.Connect(clusterID(), id, stan.NatsURL(url), stan.ConnectWait(requestTimeout))
		wantErr(t, err, "stan: clientID already registered")
		// The first connection is unaffected.
		if err := first.Publish(uniqueName(t, "ch"), []byte("still here")); err != nil {
			t.Fatalf("publish on first connection: %v", err)
		}
	})

	t.Run("replaced_when_first_is_gone", func(t *testing.T) {
		id := uniqueName(t, "c")
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		first, err := stan.Connect(clusterID(), id, stan.NatsConn(nc), stan.ConnectWait(requestTimeout))
		if err != nil {
			t.Fatalf("first connect: %v", err)
		}
		ch := uniqueName(t, "ch")
		c1 := newCollector()
		subscribe(t, first, ch, c1, stan.DurableName("dur"))
		publishRange(t, first, ch, 1, 2)
		c1.expectSeqs(t, 1, 2)
		if err := nc.Flush(); err != nil { // the auto-acks reach the server
			t.Fatal(err)
		}
		// Drop the NATS connection without a STAN close: the server's heartbeat probe to the
		// old client goes unanswered, so the new connection takes over and the old client's
		// durable stays, offline, for it.
		nc.Close()
		second := stanConnect(t, id)
		publishRange(t, second, ch, 3, 3)
		c2 := newCollector()
		subscribe(t, second, ch, c2, stan.DurableName("dur"))
		c2.expectSeqs(t, 3)
		c2.expectNone(t)
	})
}

func TestCloseRequestErrors(t *testing.T) {
	nc := natsConnect(t)
	s := rawConnect(t, nc, uniqueName(t, "c"))
	tests := []struct {
		name    string
		payload []byte
		want    string
	}{
		{"garbage", []byte{0xff, 0xff, 0xff}, "stan: invalid close request"},
		{"unknown_client", mustMarshal(t, &pb.CloseRequest{ClientID: "nobody-" + nuid.Next()}), "stan: unknown clientID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &pb.CloseResponse{}
			if err := r.Unmarshal(rawRequest(t, nc, s.resp.CloseRequests, tc.payload)); err != nil {
				t.Fatal(err)
			}
			if r.Error != tc.want {
				t.Fatalf("error %q, want %q", r.Error, tc.want)
			}
		})
	}
	t.Run("close_twice", func(t *testing.T) {
		req := mustMarshal(t, &pb.CloseRequest{ClientID: s.clientID})
		r := &pb.CloseResponse{}
		if err := r.Unmarshal(rawRequest(t, nc, s.resp.CloseRequests, req)); err != nil {
			t.Fatal(err)
		}
		if r.Error != "" {
			t.Fatalf("first close: %q", r.Error)
		}
		if err := r.Unmarshal(rawRequest(t, nc, s.resp.CloseRequests, req)); err != nil {
			t.Fatal(err)
		}
		if r.Error != "stan: unknown clientID" {
			t.Fatalf("second close: %q, want %q", r.Error, "stan: unknown clientID")
		}
	})
}

func TestPingRequests(t *testing.T) {
	nc := natsConnect(t)
	s := rawConnect(t, nc, uniqueName(t, "c"))
	ping := func(t *testing.T, connID []byte) *pb.PingResponse {
		t.Helper()
		r := &pb.PingResponse{}
		if err := r.Unmarshal(rawRequest(t, nc, s.resp.PingRequests, mustMarshal(t, &pb.Ping{ConnID: connID}))); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := ping(t, s.connID); r.Error != "" {
		t.Fatalf("ping with registered connID: %q", r.Error)
	}
	if r := ping(t, []byte(nuid.Next())); r.Error != "client has been replaced or is no longer registered" {
		t.Fatalf("ping with unknown connID: %q", r.Error)
	}
}

func mustMarshal(t *testing.T, m interface{ Marshal() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPingDetectsClosedSession: stan.go PINGs the server (here every second); once the
// session is gone server-side (closed by a CloseRequest naming its client ID, as a stale
// process may send), the next PING answer carries the error and stan.go reports the
// connection lost with that text.
func TestPingDetectsClosedSession(t *testing.T) {
	id := uniqueName(t, "c")
	lost := make(chan error, 1)
	sc := stanConnect(t, id, stan.Pings(1, 3), stan.SetConnectionLostHandler(func(_ stan.Conn, err error) {
		lost <- err
	}))
	nc := natsConnect(t)
	s := rawConnect(t, nc, uniqueName(t, "closer"))
	r := &pb.CloseResponse{}
	// Sent on the client's own NATS connection, behind its back: stan-broker refuses a close
	// from another connection (client isolation).
	if err := r.Unmarshal(rawRequest(t, sc.NatsConn(), s.resp.CloseRequests, mustMarshal(t, &pb.CloseRequest{ClientID: id}))); err != nil {
		t.Fatal(err)
	}
	if r.Error != "" {
		t.Fatalf("close of %s behind its back: %q", id, r.Error)
	}
	select {
	case err := <-lost:
		wantErr(t, err, "client has been replaced or is no longer registered")
	case <-time.After(waitTimeout):
		t.Fatal("connection-lost handler not called")
	}
}
