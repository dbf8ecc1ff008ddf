package interop

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/stan.go"
)

// restartTimeout bounds the restart command (kill, start, wait for the server to be ready).
const restartTimeout = 60 * time.Second

// restartServer runs STAN_RESTART_CMD: it kills the server with SIGKILL and starts it again on
// the same store and port, returning once the server is ready (run.sh's restart-server.sh).
func restartServer(t *testing.T, cmd string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), restartTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("restart command %q: %v\n%s", cmd, err, out)
	}
	t.Logf("restart: %s", bytes.TrimSpace(out))
}

// TestRestartDurableResume: with a persistent store, a durable survives a crash of the server.
// Messages 1..10 are published and delivered, 1..5 acked, the durable's connection closed; the
// server is killed (SIGKILL) and restarted on the same store and port. A publisher connected
// across the crash keeps its session (the store kept its registration: once its NATS
// connection is back it answers the server's heartbeats again) and publishes 11..12;
// the durable, resumed by a new connection with the same client ID, gets the unacked 6..10
// flagged redelivered, then 11..12, and nothing acked; every message is still stored.
//
// Needs STAN_RESTART_CMD (a shell command doing that restart); run.sh sets it for its file
// runs only, so the test is skipped against a memory store.
func TestRestartDurableResume(t *testing.T) {
	restart := os.Getenv("STAN_RESTART_CMD")
	if restart == "" {
		t.Skip("STAN_RESTART_CMD not set: no restartable server with a persistent store")
	}
	ch := uniqueName(t, "ch")
	id := uniqueName(t, "c")
	// The publisher's NATS connection reconnects within a fraction of a second (nats.go waits
	// 2 s by default, longer than the suite's short server heartbeats allow a silent client),
	// and the test publishes once it has (it is not a race with the reconnect buffer).
	reconnected := make(chan struct{}, 1)
	pubNC := natsConnect(t, nats.ReconnectWait(100*time.Millisecond), nats.MaxReconnects(-1),
		nats.ReconnectHandler(func(*nats.Conn) {
			select {
			case reconnected <- struct{}{}:
			default:
			}
		}))
	pub := stanConnect(t, uniqueName(t, "pub"), stan.NatsConn(pubNC))
	sc := stanConnect(t, id)
	subOpts := []stan.SubscriptionOption{
		stan.DurableName("dur"), stan.SetManualAckMode(), stan.AckWait(stan.DefaultAckWait),
	}

	c1 := newCollector()
	subscribe(t, sc, ch, c1, append(subOpts, stan.DeliverAllAvailable())...)
	publishRange(t, pub, ch, 1, 10)
	msgs := c1.expectSeqs(t, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	for _, m := range msgs[:5] {
		ack(t, m)
	}
	// The acks reach the server before the close request (a round trip on the same NATS
	// connection orders them); the close answer promises the durable is stored offline.
	if err := sc.NatsConn().Flush(); err != nil {
		t.Fatal(err)
	}
	if err := sc.Close(); err != nil {
		t.Fatalf("conn close: %v", err)
	}

	restartServer(t, restart)

	// The publisher's NATS connection reconnects on its own; its streaming session was
	// recovered from the store, so publishing goes on without a new connect.
	select {
	case <-reconnected:
	case <-time.After(waitTimeout):
		t.Fatalf("the publisher's NATS connection did not reconnect within %v (status %v)", waitTimeout, pubNC.Status())
	}
	publishRange(t, pub, ch, 11, 12)

	sc2 := stanConnect(t, id)
	c2 := newCollector()
	subscribe(t, sc2, ch, c2, append(subOpts, stan.StartAt(0))...)
	got := c2.expectSeqs(t, 6, 7, 8, 9, 10, 11, 12)
	for _, m := range got {
		if want := m.Sequence <= 10; m.Redelivered != want {
			t.Errorf("seq %d: redelivered=%v, want %v", m.Sequence, m.Redelivered, want)
		}
		if !bytes.Equal(m.Data, payload(int(m.Sequence))) {
			t.Errorf("seq %d: data %q, want %q", m.Sequence, m.Data, payload(int(m.Sequence)))
		}
		ack(t, m)
	}
	c2.expectNone(t)

	all := newCollector()
	subscribe(t, sc2, ch, all, stan.DeliverAllAvailable())
	for _, m := range all.expectSeqs(t, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12) {
		if !bytes.Equal(m.Data, payload(int(m.Sequence))) {
			t.Errorf("stored seq %d: data %q, want %q", m.Sequence, m.Data, payload(int(m.Sequence)))
		}
	}
	all.expectNone(t)
}
