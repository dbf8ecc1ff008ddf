package interop

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nuid"
	"github.com/nats-io/stan.go"
)

// readyTimeout bounds how long TestMain waits for the streaming server to answer connects.
const readyTimeout = 15 * time.Second

func TestMain(m *testing.M) {
	if url := os.Getenv("STAN_URL"); url != "" {
		if err := waitForStreaming(url, clusterID()); err != nil {
			fmt.Fprintf(os.Stderr, "streaming server at %s (cluster %q) not ready: %v\n", url, clusterID(), err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// waitForStreaming connects and closes a probe client until one attempt succeeds: the core-NATS
// port may accept connections before the streaming engine answers on its subjects.
func waitForStreaming(url, cluster string) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		sc, err := stan.Connect(cluster, "probe-"+nuid.Next(), stan.NatsURL(url), stan.ConnectWait(time.Second))
		if err == nil {
			return sc.Close()
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond) // retry interval of a bounded readiness poll
	}
}
