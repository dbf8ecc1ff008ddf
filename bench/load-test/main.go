// Command load-test puts a NATS Streaming server under a bounded load with the official Go
// client: many clients (each its own NATS connection), many subscriptions of every kind
// (plain, durable, queue) spread over channels, and publishers at a steady rate for a fixed
// time. It checks that
//
//   - no client loses its connection (connection-lost handler never called),
//   - every plain and durable subscription gets every message of its channel, and every queue
//     group gets each message of its channel once,
//   - a subscription that never acks receives exactly its max in flight and no more,
//
// and samples the server's resident memory (VmRSS of -pid) once a second.
//
//	load-test -s nats://127.0.0.1:4222 -pid <server pid> [-clients 1000 -subs 10000 -d 20s]
//
// It exits non-zero when a check fails.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	stan "github.com/nats-io/stan.go"
)

func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	return -1
}

type counter struct{ n int64 }

func main() {
	url := flag.String("s", "nats://127.0.0.1:4222", "server URL")
	cluster := flag.String("c", "test-cluster", "cluster ID")
	pid := flag.Int("pid", 0, "server process ID (for VmRSS); 0 = do not sample")
	nClients := flag.Int("clients", 1000, "clients (NATS connections)")
	nSubs := flag.Int("subs", 10000, "subscriptions, a third each plain, durable and queue")
	nChannels := flag.Int("channels", 100, "channels")
	nPubs := flag.Int("publishers", 10, "publishing clients (among -clients)")
	rate := flag.Int("rate", 1000, "messages per second, all publishers together")
	size := flag.Int("ms", 128, "message size")
	dur := flag.Duration("d", 20*time.Second, "publishing time")
	noAckInflight := flag.Int("noack-inflight", 500, "max in flight of the never-acking subscription")
	flag.Parse()

	var lost int64
	rssMax, rssStart := int64(0), rssKiB(*pid)
	sample := func() int64 {
		if *pid == 0 {
			return 0
		}
		v := rssKiB(*pid)
		if v > rssMax {
			rssMax = v
		}
		return v
	}

	t0 := time.Now()
	conns := make([]stan.Conn, *nClients)
	var wg sync.WaitGroup
	var connErr atomic.Value
	sem := make(chan struct{}, 50)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			sc, err := stan.Connect(*cluster, fmt.Sprintf("load-%d", i), stan.NatsURL(*url),
				stan.ConnectWait(30*time.Second), stan.PubAckWait(60*time.Second),
				stan.SetConnectionLostHandler(func(_ stan.Conn, err error) {
					atomic.AddInt64(&lost, 1)
					fmt.Fprintf(os.Stderr, "client load-%d lost: %v\n", i, err)
				}))
			if err != nil {
				connErr.Store(fmt.Sprintf("connect load-%d: %v", i, err))
				return
			}
			conns[i] = sc
		}(i)
	}
	wg.Wait()
	if e := connErr.Load(); e != nil {
		fmt.Println("FAIL", e)
		os.Exit(1)
	}
	fmt.Printf("connected %d clients in %.1fs, server RSS %d MiB\n", *nClients, time.Since(t0).Seconds(), sample()/1024)

	// Subscriptions: kind by index (plain, durable, queue), channel by index.
	t0 = time.Now()
	type sub struct {
		kind    int
		channel int
		got     *counter
	}
	subs := make([]sub, *nSubs)
	queueGot := make([]counter, *nChannels)
	hasQueue := make([]bool, *nChannels)
	for i := 0; i < *nSubs; i++ {
		if i%3 == 2 {
			hasQueue[(i/3)%*nChannels] = true
		}
	}
	for i := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			sc := conns[i%*nClients]
			ch := (i / 3) % *nChannels
			s := sub{kind: i % 3, channel: ch, got: &counter{}}
			subject := fmt.Sprintf("load.%d", ch)
			var err error
			switch s.kind {
			case 0:
				_, err = sc.Subscribe(subject, func(*stan.Msg) { atomic.AddInt64(&s.got.n, 1) })
			case 1:
				_, err = sc.Subscribe(subject, func(*stan.Msg) { atomic.AddInt64(&s.got.n, 1) },
					stan.DurableName(fmt.Sprintf("dur-%d", i)))
			case 2:
				_, err = sc.QueueSubscribe(subject, "q", func(*stan.Msg) {
					atomic.AddInt64(&queueGot[ch].n, 1)
				}, stan.DurableName("qdur"))
			}
			if err != nil {
				connErr.Store(fmt.Sprintf("subscribe %d: %v", i, err))
			}
			subs[i] = s
		}(i)
	}
	wg.Wait()
	if e := connErr.Load(); e != nil {
		fmt.Println("FAIL", e)
		os.Exit(1)
	}
	// The subscription that never acks, on a channel of its own.
	var noAckGot int64
	if _, err := conns[0].Subscribe("load.noack", func(*stan.Msg) { atomic.AddInt64(&noAckGot, 1) },
		stan.SetManualAckMode(), stan.MaxInflight(*noAckInflight), stan.AckWait(10*time.Minute)); err != nil {
		fmt.Println("FAIL subscribe noack:", err)
		os.Exit(1)
	}
	fmt.Printf("%d subscriptions in %.1fs, server RSS %d MiB\n", *nSubs+1, time.Since(t0).Seconds(), sample()/1024)

	// Publishing: each publisher its share of the rate, round-robin over the channels; every
	// tenth message also goes to the never-acking subscription's channel.
	published := make([]int64, *nChannels)
	var noAckPublished, acked, ackErrs int64
	payload := make([]byte, *size)
	pubStart := time.Now()
	stop := pubStart.Add(*dur)
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fmt.Printf("  t=%2.0fs acked %d, server RSS %d MiB\n", time.Since(pubStart).Seconds(), atomic.LoadInt64(&acked), sample()/1024)
			}
		}
	}()
	ah := func(_ string, err error) {
		if err != nil {
			atomic.AddInt64(&ackErrs, 1)
		} else {
			atomic.AddInt64(&acked, 1)
		}
	}
	per := *rate / *nPubs
	if per < 1 {
		per = 1
	}
	for p := 0; p < *nPubs; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			sc := conns[*nClients-1-p]
			interval := time.Second / time.Duration(per)
			next := time.Now()
			for k := p; time.Now().Before(stop); k += *nPubs {
				ch := k % *nChannels
				if _, err := sc.PublishAsync(fmt.Sprintf("load.%d", ch), payload, ah); err != nil {
					atomic.AddInt64(&ackErrs, 1)
					continue
				}
				atomic.AddInt64(&published[ch], 1)
				if k%10 == 0 {
					if _, err := sc.PublishAsync("load.noack", payload, ah); err == nil {
						atomic.AddInt64(&noAckPublished, 1)
					}
				}
				next = next.Add(interval)
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
			}
		}(p)
	}
	wg.Wait()
	var total int64
	for i := range published {
		total += atomic.LoadInt64(&published[i])
	}
	total += noAckPublished
	// Wait (bounded) for acks and deliveries to settle.
	expect := func() (missing int64) {
		for _, s := range subs {
			if s.kind != 2 {
				missing += published[s.channel] - atomic.LoadInt64(&s.got.n)
			}
		}
		for ch := range queueGot {
			if hasQueue[ch] {
				missing += published[ch] - atomic.LoadInt64(&queueGot[ch].n)
			}
		}
		return missing
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && (atomic.LoadInt64(&acked)+atomic.LoadInt64(&ackErrs) < total || expect() != 0) {
		time.Sleep(100 * time.Millisecond)
	}
	close(done)
	var delivered int64
	for _, s := range subs {
		delivered += atomic.LoadInt64(&s.got.n)
	}
	for ch := range queueGot {
		delivered += atomic.LoadInt64(&queueGot[ch].n)
	}
	wantNoAck := noAckPublished
	if wantNoAck > int64(*noAckInflight) {
		wantNoAck = int64(*noAckInflight)
	}
	rssEnd := sample()
	fmt.Printf("published %d msgs of %d B in %s (%d/s target), acked %d, ack errors %d\n",
		total, *size, *dur, *rate, acked, ackErrs)
	fmt.Printf("delivered %d, missing %d, never-acking subscription got %d of %d (max in flight %d)\n",
		delivered, expect(), noAckGot, noAckPublished, *noAckInflight)
	fmt.Printf("server RSS: start %d MiB, max %d MiB, end %d MiB; connections lost %d\n",
		rssStart/1024, rssMax/1024, rssEnd/1024, atomic.LoadInt64(&lost))
	ok := acked == total && ackErrs == 0 && expect() == 0 && atomic.LoadInt64(&noAckGot) == wantNoAck && atomic.LoadInt64(&lost) == 0
	for _, sc := range conns {
		_ = sc.Close()
	}
	if *pid != 0 {
		time.Sleep(2 * time.Second)
		fmt.Printf("server RSS 2s after every client closed: %d MiB\n", rssKiB(*pid)/1024)
	}
	if !ok {
		fmt.Println("FAIL")
		os.Exit(1)
	}
	fmt.Println("OK")
}
