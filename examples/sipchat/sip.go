package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// endpoint is one user agent: a sipgo UA with a server (to be called) and
// a client (to call), listening on a free loopback port.
type endpoint struct {
	name      string // "alice": the SIP user and the name printed
	display   string // "Alice"
	transport string // "udp" or "tcp"
	port      int    // of its SIP listener, 127.0.0.1
	// proxy is the outbound proxy new dialogs go to, host:port; "" sends
	// them straight to the callee. The proxy's Record-Route takes the rest
	// of each dialog the same way.
	proxy string
	log   *transcript
	media media // how it reaches MSRP

	ua       *sipgo.UserAgent
	uac      *sipgo.DialogClientCache
	uas      *sipgo.DialogServerCache
	closeLn  func() error
	closed   chan struct{} // closed by Close
	onInvite func(*incomingCall)
}

// quiet keeps sipgo's own logging to errors: the transcript says what
// happens. Parts of sipgo log to its package default, which is set once,
// before the first user agent exists.
var (
	quiet      = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	quietSipgo sync.Once
)

// endpointConfig says what user agent newEndpoint starts.
type endpointConfig struct {
	name      string // "alice"
	transport string // "udp" or "tcp"
	port      int    // on 127.0.0.1; 0 picks a free one
	proxy     string // host:port, or ""
	media     media
	// onInvite answers the calls the endpoint receives, each on a
	// goroutine of its own; nil refuses them.
	onInvite func(*incomingCall)
}

// newEndpoint starts a user agent. Everything its handlers read is set
// before it serves: its listener's goroutine is what orders that before
// the first request.
func newEndpoint(cfg endpointConfig, log *transcript) (*endpoint, error) {
	quietSipgo.Do(func() { sip.SetDefaultLogger(quiet) })
	e := &endpoint{name: cfg.name, display: strings.ToUpper(cfg.name[:1]) + cfg.name[1:], transport: cfg.transport,
		proxy: cfg.proxy, log: log, media: cfg.media, onInvite: cfg.onInvite, closed: make(chan struct{})}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(e.display), sipgo.WithUserAgentHostname("127.0.0.1"),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)))
	if err != nil {
		return nil, err
	}
	e.ua = ua
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		ua.Close()
		return nil, err
	}
	// Listen first, so that the port is known for Via and Contact.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.port))
	clientOpts := []sipgo.ClientOption{sipgo.WithClientLogger(quiet), sipgo.WithClientHostname("127.0.0.1")}
	var serve func()
	switch cfg.transport {
	case "udp":
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			ua.Close()
			return nil, err
		}
		e.port, e.closeLn = pc.LocalAddr().(*net.UDPAddr).Port, pc.Close
		serve = func() {
			go srv.ServeUDP(pc)
			// The socket can be found only once ServeUDP's goroutine has
			// put it in the transport's pool: before, sipgo would try to
			// open another on the same port.
			for pool := ua.TransportLayer().Pool("udp"); pool.Size() == 0; {
				time.Sleep(time.Millisecond)
			}
		}
		// Requests leave from the listening socket, as a phone's do, so
		// that all SIP goes to and from the port in Via and Contact.
		clientOpts = append(clientOpts, sipgo.WithClientConnectionAddr(pc.LocalAddr().String()))
	case "tcp":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			ua.Close()
			return nil, err
		}
		e.port, e.closeLn = ln.Addr().(*net.TCPAddr).Port, ln.Close
		serve = func() { go srv.ServeTCP(ln) }
	default:
		ua.Close()
		return nil, fmt.Errorf("transport %q: want udp or tcp", cfg.transport)
	}
	client, err := sipgo.NewClient(ua, append(clientOpts, sipgo.WithClientPort(e.port))...)
	if err != nil {
		e.Close()
		return nil, err
	}
	contact := sip.ContactHeader{DisplayName: e.display, Address: e.uri()}
	e.uac = sipgo.NewDialogClientCache(client, contact)
	e.uas = sipgo.NewDialogServerCache(client, contact)

	srv.OnInvite(e.handleInvite)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := e.uas.ReadAck(req, tx); err != nil {
			e.log.note(e.name, "error", "ACK outside a dialog: "+err.Error())
			return
		}
		e.log.sip(userOf(req.From()), e.name, "ACK", "ACK"+e.viaReq(req))
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		// Log first: ReadBye answers 200 and ends the dialog, and the MSRP
		// session waiting on it closes, which the transcript says next.
		e.log.sip(userOf(req.From()), e.name, "BYE", "BYE"+e.viaReq(req))
		err := e.uas.ReadBye(req, tx) // a call we took
		if errors.Is(err, sipgo.ErrDialogDoesNotExists) {
			err = e.uac.ReadBye(req, tx) // a call we made
		}
		if err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, err.Error(), nil))
		}
	})
	serve()
	return e, nil
}

// uri is the endpoint's SIP URI, where it is reached: its Contact, and the
// Request-URI of calls to it.
func (e *endpoint) uri() sip.Uri {
	u := sip.Uri{Scheme: "sip", User: e.name, Host: "127.0.0.1", Port: e.port}
	if e.transport == "tcp" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", "tcp")
	}
	return u
}

// aor is the endpoint's address of record, as CPIM From and To name it.
func (e *endpoint) aor() string { return "sip:" + e.name + "@127.0.0.1" }

// Close ends the user agent and its listener.
func (e *endpoint) Close() error {
	close(e.closed)
	err := e.ua.Close()
	if e.closeLn != nil {
		_ = e.closeLn() // sipgo may have closed it already
	}
	return err
}

// viaRes says that a response came through the proxy: from its address
// (over UDP it sends from its port; over TCP the response comes on our
// connection to it).
func (e *endpoint) viaRes(res *sip.Response) string {
	if e.proxy != "" && res.Source() == e.proxy {
		return " (via the proxy " + e.proxy + ")"
	}
	return ""
}

// viaReq says that a request came through the proxy: the proxy's Via is on
// top. (Over TCP it comes from a port of the proxy's choosing.)
func (e *endpoint) viaReq(req *sip.Request) string {
	if v := req.Via(); e.proxy != "" && v != nil && net.JoinHostPort(v.Host, strconv.Itoa(v.Port)) == e.proxy {
		return " (via the proxy " + e.proxy + ")"
	}
	return ""
}

// userOf is the user who sent a request: From's, as the user agents here
// name themselves.
func userOf(from *sip.FromHeader) string {
	if from == nil {
		return "?"
	}
	return from.Address.User
}

// call is an INVITE dialog this endpoint started, answered and ACKed.
type call struct {
	dialog *sipgo.DialogClientSession
	answer []byte // the SDP answer
}

// invite calls to with an SDP offer, through the proxy if there is one,
// waits for the final answer and ACKs a 2xx.
func (e *endpoint) invite(ctx context.Context, to *endpoint, offer []byte) (*call, error) {
	req := sip.NewRequest(sip.INVITE, to.uri())
	from := &sip.FromHeader{DisplayName: e.display, Address: sip.Uri{Scheme: "sip", User: e.name, Host: "127.0.0.1"}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{DisplayName: to.display, Address: sip.Uri{Scheme: "sip", User: to.name, Host: "127.0.0.1"}})
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer)
	if e.proxy != "" {
		req.SetDestination(e.proxy)
	}
	dialog, err := e.uac.WriteInvite(ctx, req)
	if err != nil {
		return nil, err
	}
	err = dialog.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		detail := fmt.Sprintf("%d %s", res.StatusCode, res.Reason)
		if len(res.Body()) > 0 {
			detail += " (SDP answer: " + sdpSummary(res.Body()) + ")"
		}
		e.log.sip(to.name, e.name, fmt.Sprint(res.StatusCode), detail+e.viaRes(res))
		return nil
	}})
	if err != nil {
		dialog.Close()
		return nil, err
	}
	if err := dialog.Ack(ctx); err != nil {
		dialog.Close()
		return nil, err
	}
	return &call{dialog: dialog, answer: dialog.InviteResponse.Body()}, nil
}

// ended is closed when the dialog ends: the peer hung up.
func (c *call) ended() <-chan struct{} { return c.dialog.Context().Done() }

// hangUp sends BYE and waits for its 200.
func (e *endpoint) hangUp(ctx context.Context, to *endpoint, c *call) error {
	defer c.dialog.Close()
	if err := c.dialog.Bye(ctx); err != nil {
		return fmt.Errorf("BYE: %w", err)
	}
	// sipgo's Bye returns nil only on a 200.
	e.log.sip(to.name, e.name, "200", "200 OK (to the BYE)")
	return nil
}

// incomingCall is an INVITE this endpoint received. The application
// answers it with accept or reject, once.
type incomingCall struct {
	from   string // the caller's user
	offer  []byte
	dialog *sipgo.DialogServerSession
	// answered gets the answer's outcome: nil once the 2xx has been ACKed.
	answered chan error
	e        *endpoint
}

// accept answers 200 OK with the SDP answer and returns once the ACK is
// in (sipgo's Respond waits for it, sending the 200 again meanwhile).
func (c *incomingCall) accept(answer []byte) error {
	err := c.dialog.Respond(sip.StatusOK, "OK", answer, sip.NewHeader("Content-Type", "application/sdp"))
	switch {
	case err != nil:
		err = fmt.Errorf("200 OK: %w", err)
	case c.dialog.LoadState() != sip.DialogStateConfirmed:
		err = errors.New("200 OK: the call ended before its ACK")
	}
	c.answered <- err
	return err
}

// reject answers the INVITE with a final error response.
func (c *incomingCall) reject(code int, reason string) error {
	err := c.dialog.Respond(code, reason, nil)
	c.answered <- errors.Join(err, fmt.Errorf("rejected the call with %d %s", code, reason))
	return err
}

// ended is closed when the dialog ends: BYE received, or the call failed.
func (c *incomingCall) ended() <-chan struct{} { return c.dialog.Context().Done() }

// hangUp sends BYE to the caller, along the route the INVITE
// Record-Routed, and waits for its 200.
func (c *incomingCall) hangUp(ctx context.Context) error {
	if err := c.dialog.Bye(ctx); err != nil {
		return fmt.Errorf("BYE: %w", err)
	}
	// sipgo's Bye returns nil only on a 200.
	c.e.log.sip(c.from, c.e.name, "200", "200 OK (to the BYE)")
	return nil
}

// handleInvite runs on sipgo's goroutine for the INVITE: it hands the call
// to onInvite and stays until the dialog ends, as sipgo's server dialogs
// want.
func (e *endpoint) handleInvite(req *sip.Request, tx sip.ServerTransaction) {
	dialog, err := e.uas.ReadInvite(req, tx)
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBadRequest, err.Error(), nil))
		return
	}
	defer dialog.Close()
	from := userOf(req.From())
	e.log.sip(from, e.name, "INVITE", "INVITE "+req.Recipient.String()+" (SDP offer: "+sdpSummary(req.Body())+")"+e.viaReq(req))
	c := &incomingCall{from: from, offer: req.Body(), dialog: dialog, answered: make(chan error, 1), e: e}
	if e.onInvite == nil {
		_ = c.reject(sip.StatusTemporarilyUnavailable, "Not Taking Calls")
		return
	}
	go e.onInvite(c)
	select {
	case err := <-c.answered:
		if err != nil {
			return
		}
	case <-e.closed:
		return
	}
	select {
	case <-c.ended():
	case <-e.closed:
	}
}
