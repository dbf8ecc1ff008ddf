// Command core-fanout measures core-NATS throughput through one server with the official Go
// client: one publisher sending -n messages of -ms bytes to one subject, and optionally one
// subscriber on that subject (-subs 1). It prints one line:
//
//	pub <msgs/s> sub <msgs/s|-> result <ok|cut: reason>
//
// The publisher figure is messages over the time from the first publish to the end of the
// final flush; the subscriber figure is messages over the time from the first publish to the
// last message received. A subscriber closed by the server (slow consumer) ends the run as cut.
package main

import (
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

func main() {
	url := flag.String("s", nats.DefaultURL, "server URL")
	n := flag.Int("n", 1000000, "messages")
	size := flag.Int("ms", 128, "message size in bytes")
	subs := flag.Int("subs", 0, "subscribers (0 or 1)")
	wait := flag.Duration("timeout", 60*time.Second, "longest wait for the subscriber")
	flag.Parse()

	cut := make(chan string, 1)
	done := make(chan struct{})
	var got int64
	if *subs > 0 {
		sc, err := nats.Connect(*url, nats.NoReconnect(),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				select {
				case cut <- err.Error():
				default:
				}
			}),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				reason := "disconnected"
				if err != nil {
					reason = err.Error()
				}
				select {
				case cut <- reason:
				default:
				}
			}))
		if err != nil {
			fmt.Fprintln(os.Stderr, "subscriber connect:", err)
			os.Exit(1)
		}
		defer sc.Close()
		sub, err := sc.Subscribe("bench.core", func(_ *nats.Msg) {
			if atomic.AddInt64(&got, 1) == int64(*n) {
				close(done)
			}
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "subscribe:", err)
			os.Exit(1)
		}
		_ = sub.SetPendingLimits(-1, -1)
		if err := sc.Flush(); err != nil {
			fmt.Fprintln(os.Stderr, "subscriber flush:", err)
			os.Exit(1)
		}
	}
	pc, err := nats.Connect(*url, nats.NoReconnect())
	if err != nil {
		fmt.Fprintln(os.Stderr, "publisher connect:", err)
		os.Exit(1)
	}
	defer pc.Close()
	payload := make([]byte, *size)
	start := time.Now()
	for i := 0; i < *n; i++ {
		if err := pc.Publish("bench.core", payload); err != nil {
			fmt.Fprintln(os.Stderr, "publish:", err)
			os.Exit(1)
		}
	}
	if err := pc.FlushTimeout(*wait); err != nil {
		fmt.Fprintln(os.Stderr, "publisher flush:", err)
		os.Exit(1)
	}
	pubRate := float64(*n) / time.Since(start).Seconds()
	if *subs == 0 {
		fmt.Printf("pub %.0f sub - result ok\n", pubRate)
		return
	}
	select {
	case <-done:
		fmt.Printf("pub %.0f sub %.0f result ok\n", pubRate, float64(*n)/time.Since(start).Seconds())
	case reason := <-cut:
		fmt.Printf("pub %.0f sub - result cut after %d msgs: %s\n", pubRate, atomic.LoadInt64(&got), reason)
	case <-time.After(*wait):
		fmt.Printf("pub %.0f sub - result timeout after %d msgs\n", pubRate, atomic.LoadInt64(&got))
	}
}
