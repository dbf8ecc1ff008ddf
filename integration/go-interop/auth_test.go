package interop

// Tests that need a stan-broker started with particular flags: they start their own broker
// from STAN_BROKER_BIN (absolute, or relative to the repository root), else
// ../../target/debug/stan-broker, and are skipped when neither exists or STAN_URL is unset.

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/stan.go"
	"github.com/nats-io/stan.go/pb"
)

// brokerBinary returns the stan-broker binary to start, or skips the test.
func brokerBinary(t *testing.T) string {
	t.Helper()
	serverURL(t)
	candidates := []string{filepath.Join("..", "..", "target", "debug", "stan-broker")}
	if b := os.Getenv("STAN_BROKER_BIN"); b != "" {
		candidates = []string{b}
		if !filepath.IsAbs(b) {
			candidates = append(candidates, filepath.Join("..", "..", b))
		}
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c
		}
	}
	t.Skipf("no stan-broker binary (tried %v)", candidates)
	return ""
}

// startBroker starts stan-broker on a free loopback port with extra flags and returns its
// core-NATS URL (host:port, without scheme). The broker is stopped when the test ends.
func startBroker(t *testing.T, flags ...string) string {
	t.Helper()
	args := append([]string{"-a", "127.0.0.1", "-p", "0", "-cid", clusterID()}, flags...)
	cmd := exec.Command(brokerBinary(t), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "STAN_BROKER_READY "); ok {
				ready <- line
				return
			}
		}
		close(ready)
	}()
	select {
	case line, ok := <-ready:
		if !ok {
			t.Fatal("broker exited before it was ready")
		}
		var ports struct {
			Nats []string `json:"nats"`
		}
		if err := json.Unmarshal([]byte(line), &ports); err != nil || len(ports.Nats) == 0 {
			t.Fatalf("bad ready line %q: %v", line, err)
		}
		return strings.TrimPrefix(ports.Nats[0], "nats://")
	case <-time.After(10 * time.Second):
		t.Fatal("broker not ready within 10s")
	}
	return ""
}

func TestAuthWrongCredentialsRefused(t *testing.T) {
	hostPort := startBroker(t, "--user", "alice", "--pass", "s3cret")
	for _, url := range []string{
		"nats://" + hostPort,
		"nats://alice:wrong@" + hostPort,
		"nats://bob:s3cret@" + hostPort,
	} {
		sc, err := stan.Connect(clusterID(), uniqueName(t, "c"), stan.NatsURL(url),
			stan.ConnectWait(requestTimeout))
		if err == nil {
			sc.Close()
			t.Fatalf("%s: connect succeeded", url)
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("%s: want %v, got %v", url, nats.ErrAuthorization, err)
		}
	}
	sc, err := stan.Connect(clusterID(), uniqueName(t, "c"),
		stan.NatsURL("nats://alice:s3cret@"+hostPort), stan.ConnectWait(requestTimeout))
	if err != nil {
		t.Fatalf("connect with the right credentials: %v", err)
	}
	defer sc.Close()
	if err := sc.Publish(uniqueName(t, "ch"), []byte("m")); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func TestAuthTokenRefusedAndAccepted(t *testing.T) {
	hostPort := startBroker(t, "--auth", "t0ken")
	_, err := stan.Connect(clusterID(), uniqueName(t, "c"), stan.NatsURL("nats://nope@"+hostPort),
		stan.ConnectWait(requestTimeout))
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("want %v, got %v", nats.ErrAuthorization, err)
	}
	sc, err := stan.Connect(clusterID(), uniqueName(t, "c"), stan.NatsURL("nats://t0ken@"+hostPort),
		stan.ConnectWait(requestTimeout))
	if err != nil {
		t.Fatalf("connect with the right token: %v", err)
	}
	sc.Close()
}

// A stan.go client's subscription cannot be closed, nor the client, from another NATS
// connection (stan-broker's client isolation; the official server accepts both).
func TestIsolationForeignCloseRefused(t *testing.T) {
	url := "nats://" + startBroker(t)
	id := uniqueName(t, "victim")
	sc, err := stan.Connect(clusterID(), id, stan.NatsURL(url), stan.ConnectWait(requestTimeout))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer sc.Close()
	channel := uniqueName(t, "ch")
	c := newCollector()
	sub := subscribe(t, sc, channel, c)

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	defer nc.Close()
	attacker := rawConnect(t, nc, uniqueName(t, "attacker"))
	closeReq, _ := (&pb.CloseRequest{ClientID: id}).Marshal()
	var resp pb.CloseResponse
	if err := resp.Unmarshal(rawRequest(t, nc, attacker.resp.CloseRequests, closeReq)); err != nil {
		t.Fatal(err)
	}
	if resp.Error != "stan: unknown clientID" {
		t.Fatalf("foreign close: got error %q", resp.Error)
	}
	publishRange(t, sc, channel, 1, 1)
	c.expectSeqs(t, 1)
	if err := sub.Close(); err != nil {
		t.Fatalf("own subscription close: %v", err)
	}
	if err := sc.Close(); err != nil {
		t.Fatalf("own close: %v", err)
	}
}
