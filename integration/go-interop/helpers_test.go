// Package interop checks a NATS Streaming server against the behaviour the official Go client
// (stan.go) and the official core-NATS client (nats.go) depend on.
//
// The server is given by STAN_URL (core-NATS URL) and STAN_CLUSTER_ID (default "test-cluster").
// Without STAN_URL every test is skipped. Each test uses its own channels and client IDs, so
// the suite can share one freshly started server.
package interop

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/nats-io/stan.go"
	"github.com/nats-io/stan.go/pb"
)

const (
	// waitTimeout bounds every wait for an event that must happen.
	waitTimeout = 5 * time.Second
	// quietWindow is how long a test watches for something that must not happen.
	quietWindow = 300 * time.Millisecond
	// requestTimeout bounds raw protocol requests.
	requestTimeout = 2 * time.Second
)

// serverURL returns STAN_URL or skips the test.
func serverURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("STAN_URL")
	if u == "" {
		t.Skip("STAN_URL not set: no server to test against")
	}
	return u
}

// clusterID returns STAN_CLUSTER_ID or the default cluster ID.
func clusterID() string {
	if c := os.Getenv("STAN_CLUSTER_ID"); c != "" {
		return c
	}
	return "test-cluster"
}

var nonIDChars = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// uniqueName returns a name made of the test name and a random suffix, valid both as a client
// ID and as a channel name.
func uniqueName(t *testing.T, what string) string {
	t.Helper()
	base := nonIDChars.ReplaceAllString(t.Name(), "_")
	if len(base) > 40 {
		base = base[len(base)-40:]
	}
	return strings.Trim(base, "_") + "-" + what + "-" + nuid.Next()[14:]
}

// natsConnect opens a plain core-NATS connection closed at the end of the test.
func natsConnect(t *testing.T, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(serverURL(t), opts...)
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// stanConnect connects a streaming client that is closed at the end of the test.
func stanConnect(t *testing.T, clientID string, opts ...stan.Option) stan.Conn {
	t.Helper()
	all := append([]stan.Option{stan.NatsURL(serverURL(t)), stan.ConnectWait(requestTimeout)}, opts...)
	sc, err := stan.Connect(clusterID(), clientID, all...)
	if err != nil {
		t.Fatalf("stan connect %q: %v", clientID, err)
	}
	t.Cleanup(func() { _ = sc.Close() })
	return sc
}

// publishRange publishes payload(from) … payload(to) synchronously.
func publishRange(t *testing.T, sc stan.Conn, channel string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if err := sc.Publish(channel, payload(i)); err != nil {
			t.Fatalf("publish %d on %q: %v", i, channel, err)
		}
	}
}

// payload is the data of the i-th message published by publishRange.
func payload(i int) []byte {
	return []byte("msg-" + strconv.Itoa(i))
}

// collector gathers the messages of one subscription.
type collector struct {
	ch chan *stan.Msg
}

func newCollector() *collector {
	return &collector{ch: make(chan *stan.Msg, 4096)}
}

// handler is the stan.MsgHandler feeding the collector.
func (c *collector) handler(m *stan.Msg) {
	c.ch <- m
}

// next returns the next message or fails the test after waitTimeout.
func (c *collector) next(t *testing.T) *stan.Msg {
	t.Helper()
	select {
	case m := <-c.ch:
		return m
	case <-time.After(waitTimeout):
		t.Fatalf("no message within %v", waitTimeout)
		return nil
	}
}

// nextWithin returns the next message or fails the test after d.
func (c *collector) nextWithin(t *testing.T, d time.Duration) *stan.Msg {
	t.Helper()
	select {
	case m := <-c.ch:
		return m
	case <-time.After(d):
		t.Fatalf("no message within %v", d)
		return nil
	}
}

// expectSeqs receives len(seqs) messages and checks their sequences in order.
func (c *collector) expectSeqs(t *testing.T, seqs ...uint64) []*stan.Msg {
	t.Helper()
	msgs := make([]*stan.Msg, 0, len(seqs))
	for i, want := range seqs {
		m := c.next(t)
		if m.Sequence != want {
			t.Fatalf("message #%d: sequence %d, want %d (sequences so far: %v)", i+1, m.Sequence, want, seqsOf(append(msgs, m)))
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// expectNone checks that nothing arrives during quietWindow.
func (c *collector) expectNone(t *testing.T) {
	t.Helper()
	c.expectNoneFor(t, quietWindow)
}

// expectNoneFor checks that nothing arrives during d.
func (c *collector) expectNoneFor(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-c.ch:
		t.Fatalf("unexpected message seq=%d redelivered=%v data=%q", m.Sequence, m.Redelivered, m.Data)
	case <-time.After(d):
	}
}

func seqsOf(msgs []*stan.Msg) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Sequence
	}
	return out
}

// subscribe subscribes through stan.go and fails the test on error. The subscription is not
// closed by the helper: tests that care close or unsubscribe it themselves, the rest go away
// with their connection.
func subscribe(t *testing.T, sc stan.Conn, channel string, c *collector, opts ...stan.SubscriptionOption) stan.Subscription {
	t.Helper()
	sub, err := sc.Subscribe(channel, c.handler, opts...)
	if err != nil {
		t.Fatalf("subscribe %q: %v", channel, err)
	}
	return sub
}

// queueSubscribe joins a queue group through stan.go and fails the test on error.
func queueSubscribe(t *testing.T, sc stan.Conn, channel, group string, c *collector, opts ...stan.SubscriptionOption) stan.Subscription {
	t.Helper()
	sub, err := sc.QueueSubscribe(channel, group, c.handler, opts...)
	if err != nil {
		t.Fatalf("queue subscribe %q/%q: %v", channel, group, err)
	}
	return sub
}

// ack acknowledges a message received in manual-ack mode.
func ack(t *testing.T, m *stan.Msg) {
	t.Helper()
	if err := m.Ack(); err != nil {
		t.Fatalf("ack seq %d: %v", m.Sequence, err)
	}
}

// wantErr checks that err is non-nil and its text is exactly want.
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %q", want)
	}
	if err.Error() != want {
		t.Fatalf("got error %q, want %q", err.Error(), want)
	}
}

// rawSession is a streaming client registered by hand over a plain NATS connection, used to
// send requests stan.go never sends. It answers the server's heartbeats.
type rawSession struct {
	nc       *nats.Conn
	clientID string
	connID   []byte
	hbInbox  string
	resp     *pb.ConnectResponse
}

// rawConnect registers clientID with a hand-built ConnectRequest; the session is closed with a
// CloseRequest at the end of the test.
func rawConnect(t *testing.T, nc *nats.Conn, clientID string) *rawSession {
	t.Helper()
	s := &rawSession{nc: nc, clientID: clientID, connID: []byte(nuid.Next()), hbInbox: nats.NewInbox()}
	hb, err := nc.Subscribe(s.hbInbox, func(m *nats.Msg) { _ = m.Respond(nil) })
	if err != nil {
		t.Fatalf("subscribe heartbeat inbox: %v", err)
	}
	t.Cleanup(func() { _ = hb.Unsubscribe() })
	resp := rawConnectRequest(t, nc, &pb.ConnectRequest{
		ClientID:       clientID,
		HeartbeatInbox: s.hbInbox,
		Protocol:       1,
		ConnID:         s.connID,
		PingInterval:   5,
		PingMaxOut:     88,
	})
	if resp.Error != "" {
		t.Fatalf("raw connect %q: %s", clientID, resp.Error)
	}
	s.resp = resp
	t.Cleanup(func() {
		b, _ := (&pb.CloseRequest{ClientID: clientID}).Marshal()
		_, _ = nc.Request(resp.CloseRequests, b, requestTimeout)
	})
	return s
}

// discoverSubject is the subject the server takes ConnectRequests on.
func discoverSubject() string {
	return "_STAN.discover." + clusterID()
}

// rawConnectRequest sends a ConnectRequest and decodes the answer.
func rawConnectRequest(t *testing.T, nc *nats.Conn, req *pb.ConnectRequest) *pb.ConnectResponse {
	t.Helper()
	b, err := req.Marshal()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return decodeConnectResponse(t, rawRequest(t, nc, discoverSubject(), b))
}

func decodeConnectResponse(t *testing.T, data []byte) *pb.ConnectResponse {
	t.Helper()
	r := &pb.ConnectResponse{}
	if err := r.Unmarshal(data); err != nil {
		t.Fatalf("decode ConnectResponse: %v", err)
	}
	return r
}

// rawRequest sends a core-NATS request and returns the reply payload.
func rawRequest(t *testing.T, nc *nats.Conn, subject string, data []byte) []byte {
	t.Helper()
	m, err := nc.Request(subject, data, requestTimeout)
	if err != nil {
		t.Fatalf("request on %q: %v", subject, err)
	}
	return m.Data
}

// subscribeRequest sends a SubscriptionRequest and decodes the answer.
func (s *rawSession) subscribeRequest(t *testing.T, req *pb.SubscriptionRequest) *pb.SubscriptionResponse {
	t.Helper()
	b, err := req.Marshal()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return decodeSubResponse(t, rawRequest(t, s.nc, s.resp.SubRequests, b))
}

func decodeSubResponse(t *testing.T, data []byte) *pb.SubscriptionResponse {
	t.Helper()
	r := &pb.SubscriptionResponse{}
	if err := r.Unmarshal(data); err != nil {
		t.Fatalf("decode SubscriptionResponse: %v", err)
	}
	return r
}

// validSubRequest is a well-formed SubscriptionRequest of this session.
func (s *rawSession) validSubRequest(channel string) *pb.SubscriptionRequest {
	return &pb.SubscriptionRequest{
		ClientID:      s.clientID,
		Subject:       channel,
		Inbox:         nats.NewInbox(),
		MaxInFlight:   16,
		AckWaitInSecs: 30,
		StartPosition: pb.StartPosition_NewOnly,
	}
}

// publish sends a PubMsg on the session's publish prefix and returns the PubAck.
func (s *rawSession) publish(t *testing.T, subjectSuffix string, msg *pb.PubMsg) *pb.PubAck {
	t.Helper()
	b, err := msg.Marshal()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return s.publishBytes(t, subjectSuffix, b)
}

// publishBytes sends a raw payload on the session's publish prefix and returns the PubAck.
func (s *rawSession) publishBytes(t *testing.T, subjectSuffix string, b []byte) *pb.PubAck {
	t.Helper()
	data := rawRequest(t, s.nc, s.resp.PubPrefix+"."+subjectSuffix, b)
	a := &pb.PubAck{}
	if err := a.Unmarshal(data); err != nil {
		t.Fatalf("decode PubAck: %v", err)
	}
	return a
}
