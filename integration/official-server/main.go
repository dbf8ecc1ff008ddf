// Command official-server runs the published NATS Streaming server (nats-streaming-server
// v0.25.x, with its embedded core-NATS server) as a reference peer for interoperability tests
// and for the side-by-side benchmarks in bench/ (bench/stan-bench.sh, bench/file-store.sh).
//
// It prints exactly one line "READY <client URL>" on stdout once the server accepts clients
// (with -st FILE, after recovering the store),
// and shuts down cleanly on SIGINT or SIGTERM (exit status 0).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	natsd "github.com/nats-io/nats-server/v2/server"
	stand "github.com/nats-io/nats-streaming-server/server"
	"github.com/nats-io/nats-streaming-server/stores"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "official-server: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		port           = flag.Int("p", 0, "core-NATS client port on -a (0 = pick a free port)")
		host           = flag.String("a", "127.0.0.1", "core-NATS listen address")
		clusterID      = flag.String("cid", stand.DefaultClusterID, "streaming cluster ID")
		natsURL        = flag.String("ns", "", "attach to this external NATS server instead of embedding one")
		hbInterval     = flag.Duration("hbi", stand.DefaultHeartBeatInterval, "interval between heartbeats sent to clients")
		hbTimeout      = flag.Duration("hbt", stand.DefaultClientHBTimeout, "how long to wait for a heartbeat answer")
		hbFailCount    = flag.Int("hbf", stand.DefaultMaxFailedHeartBeats, "failed heartbeats before a client is closed")
		storeType      = flag.String("st", stores.TypeMemory, "store type: MEMORY or FILE")
		dir            = flag.String("dir", "", "directory of the FILE store")
		maxChannels    = flag.Int("mc", stores.DefaultStoreLimits.MaxChannels, "maximum number of channels (0 = unlimited)")
		maxSubs        = flag.Int("msu", stores.DefaultStoreLimits.MaxSubscriptions, "maximum subscriptions per channel (0 = unlimited)")
		maxMsgs        = flag.Int("mm", stores.DefaultStoreLimits.MaxMsgs, "maximum messages per channel (0 = unlimited)")
		maxBytes       = flag.Int64("mb", stores.DefaultStoreLimits.MaxBytes, "maximum bytes per channel (0 = unlimited)")
		fileSync       = flag.Bool("file_sync", true, "FILE store: sync the files on each flush (FileStoreOptions.DoSync)")
		replaceDurable = flag.Bool("replace_durable", false, "replace an active durable instead of rejecting the duplicate")
		logging        = flag.Bool("SDV", false, "enable streaming debug and trace logging on stderr")
	)
	flag.Parse()
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected arguments: %v", flag.Args())
	}
	if *port < 0 || *port > 65535 {
		return fmt.Errorf("invalid port %d", *port)
	}

	sOpts := stand.GetDefaultOptions()
	sOpts.ID = *clusterID
	sOpts.NATSServerURL = *natsURL
	sOpts.ClientHBInterval = *hbInterval
	sOpts.ClientHBTimeout = *hbTimeout
	sOpts.ClientHBFailCount = *hbFailCount
	sOpts.StoreType = *storeType
	sOpts.FilestoreDir = *dir
	sOpts.ReplaceDurable = *replaceDurable
	sOpts.MaxChannels = *maxChannels
	sOpts.MaxSubscriptions = *maxSubs
	sOpts.MaxMsgs = *maxMsgs
	sOpts.MaxBytes = *maxBytes
	sOpts.FileStoreOpts.DoSync = *fileSync
	sOpts.HandleSignals = false
	if *logging {
		sOpts.EnableLogging = true
		sOpts.Debug = true
		sOpts.Trace = true
	}

	nOpts := stand.NewNATSOptions()
	nOpts.Host = *host
	nOpts.Port = *port
	if *port == 0 {
		// The core-NATS server reads 0 as its default port (4222); -1 asks for a free one.
		nOpts.Port = natsd.RANDOM_PORT
	}
	nOpts.NoSigs = true
	nOpts.NoLog = !*logging

	srv, err := stand.RunServerWithOpts(sOpts, nOpts)
	if err != nil {
		return err
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)

	url := srv.ClientURL()
	if *natsURL != "" {
		url = *natsURL // the server reports the external address without its scheme
	}
	fmt.Printf("READY %s\n", url)

	<-sigs
	done := make(chan struct{})
	go func() {
		srv.Shutdown()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("shutdown did not complete within 10s")
	}
}
