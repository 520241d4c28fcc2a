package msrp

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-msrp/msrp/internal/digest"
	"github.com/miekg/dns"
)

// MSRPRelaySettings names an RFC 4976 relay and the credentials to
// authenticate to it, msrplib's MSRPRelaySettings.
//
// With no Host, the relay is found by DNS SRV (_msrps._tcp.<Domain>, or
// _msrp._tcp.<Domain> without TLS), falling back to Domain:2855. TLS is on
// unless DisableTLS is set: msrplib's default, and relays such as msrprelay
// refuse plain TCP. The relay's certificate must name Domain (or Host,
// without a Domain), whatever host SRV pointed to; TLSConfig.ServerName
// names another.
//
// Printing the settings (String, %#v, or a slog attribute) never shows the
// password. Hold them in a named field, not embedded: embedding would
// promote their Format and MarshalJSON to the outer struct, which would
// then print and marshal as the relay settings alone.
type MSRPRelaySettings struct {
	Domain     string // the relay's domain: digest realm, SRV name, AUTH URI host
	Username   string // digest username
	Password   string // digest password; never logged
	Host       string // relay host; empty: DNS SRV on Domain
	Port       int    // relay port; 0: from SRV, else DefaultPort
	DisableTLS bool   // use msrp:// and TCP instead of msrps:// and TLS
	// WebSocket reaches the relay over WebSocket (RFC 7977; wss, or ws
	// with DisableTLS) through ConnectConfig.DialMessage: the relay's URI
	// carries transport "ws", and our own URI is a WebSocket client's
	// (see WebSocketClientURI) unless Prepare is given a host.
	WebSocket bool
	TLSConfig *tls.Config // client TLS settings; never modified
	// Expires asks the relay for a reservation of this many seconds (the
	// AUTH Expires header); 0 lets the relay choose. A relay that finds it
	// out of bounds answers 423, and the request is repeated with its bound.
	Expires int
}

// ParseRelaySettings reads relay settings from a URL, as a configuration
// file or command line gives them: msrps://user:password@host[:port] (or
// msrp:// for TCP without TLS). The host serves as domain and host; the
// password may be empty.
func ParseRelaySettings(s string) (*MSRPRelaySettings, error) {
	u, err := url.Parse(s)
	schemes := map[string]bool{"msrp": true, "msrps": true, "ws": true, "wss": true}
	if err != nil || !schemes[u.Scheme] || u.Hostname() == "" || u.User == nil || u.User.Username() == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("msrp: relay %q: want msrp[s]://user:password@host[:port] or ws[s]://user:password@host[:port]", redactURL(s))
	}
	password, _ := u.User.Password()
	r := &MSRPRelaySettings{
		Domain: u.Hostname(), Host: u.Hostname(), Username: u.User.Username(), Password: password,
		DisableTLS: u.Scheme == "msrp" || u.Scheme == "ws",
		WebSocket:  u.Scheme == "ws" || u.Scheme == "wss",
	}
	if p := u.Port(); p != "" {
		if r.Port, err = strconv.Atoi(p); err != nil || r.Port < 1 || r.Port > 65535 {
			return nil, fmt.Errorf("msrp: relay %q: bad port", redactURL(s))
		}
	}
	return r, nil
}

// redactURL hides the password of a URL, parsable or not, for an error
// message.
func redactURL(s string) string {
	i := strings.Index(s, "://")
	j := strings.LastIndexByte(s, '@')
	if i < 0 || j < i {
		return s
	}
	user, _, hasPassword := strings.Cut(s[i+3:j], ":")
	if !hasPassword {
		return s
	}
	return s[:i+3] + user + ":xxxxx" + s[j:]
}

// URI returns the relay URI that AUTH requests are sent to and that digest
// uses as its uri parameter: the scheme, Domain (or Host when Domain is
// empty) and Port, without a session id.
func (r MSRPRelaySettings) URI() URI {
	host := r.Domain
	if host == "" {
		host = r.Host
	}
	transport := "tcp"
	if r.WebSocket {
		transport = "ws"
	}
	return URI{UseTLS: !r.DisableTLS, Host: host, Port: r.Port, Transport: transport}
}

// tlsName is the name the relay's certificate must carry: its Domain, the
// name it was asked for, never the target of an SRV record, which DNS
// (unless secured) lets anyone forge (RFC 6125 §6.2.1: the reference
// identifier comes from the source domain). Without a Domain, the Host.
func (r MSRPRelaySettings) tlsName() string {
	if r.Domain != "" {
		return r.Domain
	}
	return r.Host
}

// String describes the relay without credentials: "MSRPRelay msrps://user@host:port".
// It and the methods below have value receivers, so that the password
// stays hidden whether the settings are printed as a value, a pointer, or
// a field of a connector.
func (r MSRPRelaySettings) String() string {
	u := r.URI()
	if r.Host != "" {
		u.Host = r.Host
	}
	u.User = r.Username
	return "MSRPRelay " + u.String()
}

// GoString keeps the password out of %#v.
func (r MSRPRelaySettings) GoString() string { return r.String() }

// LogValue keeps the password out of structured logs.
func (r MSRPRelaySettings) LogValue() slog.Value {
	return slog.StringValue(r.String())
}

// Format keeps the password out of every fmt verb (%d and %x of a struct
// would print its fields), by printing String.
func (r MSRPRelaySettings) Format(f fmt.State, verb rune) {
	fmt.Fprint(f, r.String())
}

// MarshalJSON keeps the password out of JSON, which slog's JSON handler
// writes a connector as. The other fields that JSON can carry are written
// as encoding/json would, so that settings read from a configuration file
// (where Password may be given) are written back without it; TLSConfig is
// left out.
func (r MSRPRelaySettings) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Domain     string
		Username   string
		Host       string `json:",omitempty"`
		Port       int    `json:",omitempty"`
		DisableTLS bool   `json:",omitempty"`
		Expires    int    `json:",omitempty"`
	}{r.Domain, r.Username, r.Host, r.Port, r.DisableTLS, r.Expires})
}

// ---- Finding the relay ----------------------------------------------------------------

// SRVResolver looks up DNS SRV records. *net.Resolver implements it (the
// system resolver, net.DefaultResolver, is the default); DNSResolver asks a
// given server.
type SRVResolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (cname string, addrs []*net.SRV, err error)
}

// DNSResolver is an SRVResolver that asks one DNS server directly, with
// github.com/miekg/dns: for a relay domain served by a DNS server other
// than the system's. Records come back in RFC 2782 order.
type DNSResolver struct {
	Server  string        // "host:port" of the DNS server
	Net     string        // "udp" (the zero value) or "tcp"
	Timeout time.Duration // per query; 0: 5 s
}

// LookupSRV queries _service._proto.name.
func (r *DNSResolver) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	qname := "_" + service + "._" + proto + "." + dns.Fqdn(name)
	m := new(dns.Msg)
	m.SetQuestion(qname, dns.TypeSRV)
	c := &dns.Client{Net: r.Net, Timeout: r.Timeout}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	in, _, err := c.ExchangeContext(ctx, m, r.Server)
	if err != nil {
		return "", nil, &net.DNSError{Err: err.Error(), Name: qname, Server: r.Server, IsTimeout: isTimeout(err)}
	}
	if in.Rcode != dns.RcodeSuccess {
		return "", nil, &net.DNSError{Err: dns.RcodeToString[in.Rcode], Name: qname, Server: r.Server, IsNotFound: in.Rcode == dns.RcodeNameError}
	}
	var addrs []*net.SRV
	for _, rr := range in.Answer {
		if srv, ok := rr.(*dns.SRV); ok {
			addrs = append(addrs, &net.SRV{Target: srv.Target, Port: srv.Port, Priority: srv.Priority, Weight: srv.Weight})
		}
	}
	return qname, orderSRV(addrs), nil
}

// orderSRV sorts records by priority and, within a priority, picks them in
// a random order weighted by their weights (RFC 2782).
func orderSRV(addrs []*net.SRV) []*net.SRV {
	slices.SortStableFunc(addrs, func(a, b *net.SRV) int { return int(a.Priority) - int(b.Priority) })
	out := make([]*net.SRV, 0, len(addrs))
	for i := 0; i < len(addrs); {
		j := i
		for j < len(addrs) && addrs[j].Priority == addrs[i].Priority {
			j++
		}
		group := slices.Clone(addrs[i:j])
		for len(group) > 0 {
			total := 0
			for _, a := range group {
				total += int(a.Weight)
			}
			pick := 0
			if total > 0 {
				r := rand.IntN(total + 1)
				for sum := 0; pick < len(group); pick++ {
					sum += int(group[pick].Weight)
					if sum >= r && (group[pick].Weight > 0 || r == 0) {
						break
					}
				}
				pick = min(pick, len(group)-1)
			}
			out = append(out, group[pick])
			group = slices.Delete(group, pick, pick+1)
		}
		i = j
	}
	return out
}

// relayAddrs lists the addresses to try for the relay, in order.
func relayAddrs(ctx context.Context, r *MSRPRelaySettings, resolver SRVResolver, log *Logger) []string {
	port := r.Port
	if port == 0 {
		port = DefaultPort
	}
	if r.Host != "" {
		return []string{net.JoinHostPort(r.Host, strconv.Itoa(port))}
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	service := "msrps"
	if r.DisableTLS {
		service = "msrp"
	}
	_, records, err := resolver.LookupSRV(ctx, service, "tcp", r.Domain)
	if err != nil || len(records) == 0 {
		log.event("no SRV records for the relay; using the domain", "domain", r.Domain, "error", fmt.Sprint(err))
		return []string{net.JoinHostPort(r.Domain, strconv.Itoa(port))}
	}
	addrs := make([]string, 0, len(records))
	for _, rec := range records {
		addrs = append(addrs, net.JoinHostPort(strings.TrimSuffix(rec.Target, "."), strconv.Itoa(int(rec.Port))))
	}
	return addrs
}

// ---- AUTH (RFC 4976 §5) --------------------------------------------------------------------

// deliverFunc sends a request and returns its response: on a bare
// transport before a session exists, then through the session.
type deliverFunc func(ctx context.Context, c *Chunk) (*Chunk, error)

// relayAuth holds a reservation at a relay and renews it.
type relayAuth struct {
	settings MSRPRelaySettings
	local    URI
	timeout  time.Duration // per AUTH response
	log      *Logger

	mu      sync.Mutex
	usePath []URI
	expires time.Duration // 0: the relay did not say
	at      time.Time
}

// maxAuthRounds bounds the AUTH requests of one reservation: a challenge,
// a stale nonce, and interval corrections.
const maxAuthRounds = 5

// authenticate reserves a session at the relay (RFC 4976 §5): AUTH, answer
// a 401 challenge with digest credentials, repeat with the relay's bound
// after a 423, and keep the Use-Path and Expires of the 200.
func (ra *relayAuth) authenticate(ctx context.Context, deliver deliverFunc) error {
	expires := ra.settings.Expires
	var answer *digest.Answer
	for round := 0; round < maxAuthRounds; round++ {
		req := ra.request(expires, answer)
		rctx, cancel := context.WithTimeoutCause(ctx, ra.timeout, ErrAuthTimeout)
		resp, err := deliver(rctx, req)
		timedOut := expired(rctx) && !expired(ctx) // by the clock: see stageError
		cancel()
		var te *TransactionError
		switch {
		case timedOut || (errors.As(err, &te) && te.Code == 408 && resp == nil):
			return fmt.Errorf("%w: %w", ErrAuthTimeout, &TransactionError{Code: 408, Comment: "No response to AUTH request"})
		case resp == nil && err != nil:
			return err
		}
		switch resp.Code {
		case 200:
			return ra.accept(resp, answer)
		case 401:
			ch, err := challengeOf(resp)
			if err != nil {
				return err
			}
			if answer != nil && !ch.Stale {
				return &TransactionError{Code: 401, Comment: resp.Comment} // wrong credentials
			}
			a, err := digest.Respond(ch, digest.Credentials{
				Username: ra.settings.Username, Password: ra.settings.Password,
				Method: MethodAUTH, URI: ra.settings.URI().String(),
			})
			if err != nil {
				return err
			}
			answer = &a
		case 423:
			bound, err := resp.MinExpires()
			if errors.Is(err, ErrHeaderMissing) {
				bound, err = resp.MaxExpires()
			}
			if err != nil {
				return &TransactionError{Code: 423, Comment: "Interval out of bounds, and no bound given: " + err.Error()}
			}
			expires = bound
			if answer != nil {
				next := answer.Next()
				answer = &next
			}
		default:
			return &TransactionError{Code: resp.Code, Comment: resp.Comment}
		}
	}
	return errors.New("msrp: relay authentication did not settle")
}

// request builds an AUTH to the relay URI, with credentials if any.
func (ra *relayAuth) request(expires int, answer *digest.Answer) *Chunk {
	c := NewRequest(MethodAUTH, []URI{ra.settings.URI()}, []URI{ra.local})
	if expires > 0 {
		c.Headers.Add(HeaderExpires, strconv.Itoa(expires))
	}
	if answer != nil {
		c.Headers.Add(HeaderAuthorization, answer.Header())
	}
	return c
}

func challengeOf(resp *Chunk) (digest.Challenge, error) {
	p, err := resp.WWWAuthenticate()
	if err != nil {
		return digest.Challenge{}, fmt.Errorf("msrp: relay's 401: %w", err)
	}
	var ch digest.Challenge
	ch.Realm, _ = p.Get("realm")
	ch.Nonce, _ = p.Get("nonce")
	ch.Opaque, _ = p.Get("opaque")
	ch.Algorithm, _ = p.Get("algorithm")
	if qop, ok := p.Get("qop"); ok {
		ch.QOP = strings.Split(qop, ",")
	}
	stale, _ := p.Get("stale")
	ch.Stale = strings.EqualFold(stale, "true")
	if ch.Nonce == "" {
		return ch, fmt.Errorf("msrp: relay's 401: %w", invalidHeader(HeaderWWWAuthenticate, resp.Headers.Get(HeaderWWWAuthenticate), "no nonce"))
	}
	return ch, nil
}

// accept takes a 200 to AUTH: Use-Path is required; Expires is kept for
// renewal; Authentication-Info, when present, must prove the relay knows
// the password.
func (ra *relayAuth) accept(resp *Chunk, answer *digest.Answer) error {
	usePath, err := resp.UsePath()
	if err != nil {
		return fmt.Errorf("msrp: relay's 200 to AUTH: %w", err)
	}
	if answer != nil {
		if info, err := resp.AuthenticationInfo(); err == nil {
			if rsp, ok := info.Get("rspauth"); ok && !answer.CheckRspauth(rsp) {
				return errors.New("msrp: relay's Authentication-Info rspauth does not match: it does not know the password")
			}
		} else if !errors.Is(err, ErrHeaderMissing) {
			return fmt.Errorf("msrp: relay's 200 to AUTH: %w", err)
		}
	}
	var expires time.Duration
	if n, err := resp.Expires(); err == nil {
		expires = time.Duration(n) * time.Second
	}
	ra.mu.Lock()
	ra.usePath, ra.expires, ra.at = usePath, expires, time.Now()
	ra.mu.Unlock()
	ra.log.event("reserved session at relay", "relay", ra.settings.String(), "use-path", FormatPath(usePath), "expires", expires.String())
	return nil
}

// renewIn says when to renew the reservation: at four fifths of its life,
// and no later than a minute before it ends. Zero means never.
func (ra *relayAuth) renewIn() time.Duration {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if ra.expires <= 0 {
		return 0
	}
	left := ra.expires - time.Since(ra.at)
	return max(min(left*4/5, left-time.Minute), time.Second)
}

// maintain renews the reservation for as long as the session runs; the
// session starts it (see MSRPTransport.maintain).
//
// A renewal whose Use-Path differs from the one in force is applied to the
// transport t at once: our requests go by the new path, and the peer's are
// expected by it. (The a=path the peer has is then out of date: telling it
// is the SIP layer's job.)
func (ra *relayAuth) maintain(ctx context.Context, deliver deliverFunc, t *MSRPTransport) {
	for {
		wait := ra.renewIn()
		if wait == 0 {
			return
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		if err := ra.authenticate(ctx, deliver); err != nil {
			if ctx.Err() != nil {
				return
			}
			ra.log.event("renewing the relay reservation failed", "relay", ra.settings.String(), "error", err.Error())
			select { // try again shortly, while the reservation lasts
			case <-time.After(min(30*time.Second, max(ra.renewIn(), time.Second))):
			case <-ctx.Done():
				return
			}
			continue
		}
		ra.mu.Lock()
		usePath := ra.usePath
		ra.mu.Unlock()
		t.pathMu.RLock()
		changed := !pathEqual(t.localPath, usePath)
		t.pathMu.RUnlock()
		if changed {
			ra.log.event("the relay changed its Use-Path", "relay", ra.settings.String(), "use-path", FormatPath(usePath))
			t.SetLocalPath(usePath)
		}
	}
}

// deliverOnTransport sends a request on a transport no session runs on yet
// and waits for its response, skipping anything else.
func deliverOnTransport(t *MSRPTransport) deliverFunc {
	return func(ctx context.Context, c *Chunk) (*Chunk, error) {
		if err := t.WriteChunk(ctx, c); err != nil {
			return nil, err
		}
		for {
			resp, err := t.ReadChunk(ctx)
			if err != nil {
				var pe *ChunkParseError
				if errors.As(err, &pe) {
					continue
				}
				return nil, err
			}
			if !resp.IsRequest() && resp.TransactionID == c.TransactionID {
				return resp, nil
			}
		}
	}
}

// ---- ConnectorRelay and AcceptorRelay --------------------------------------------------------

// ConnectorRelay is the active side of a session through an RFC 4976 relay:
// Prepare connects to the relay and authenticates, Complete binds by
// sending an empty SEND through it. msrplib's RelayConnection in 'active'
// mode (ConnectorRelay in its older API).
type ConnectorRelay struct {
	ConnectConfig
	Relay    MSRPRelaySettings
	Resolver SRVResolver // nil: the system resolver

	rc relayConnection
}

// AcceptorRelay is the passive side of a session through an RFC 4976
// relay: Prepare connects to the relay and authenticates, Complete waits for
// the peer's first SEND on that connection. msrplib's RelayConnection in
// 'passive' mode (AcceptorRelay in its older API).
type AcceptorRelay struct {
	ConnectConfig
	Relay    MSRPRelaySettings
	Resolver SRVResolver // nil: the system resolver

	rc relayConnection
}

// Prepare connects to the relay (TLS unless Relay.DisableTLS) within
// ConnectTimeout, authenticates, and returns the full local path for SDP
// a=path: the relay's Use-Path and our URI. Timeouts are
// ErrRelayConnectTimeout, and ErrAuthTimeout (also a 408) when the relay
// does not answer AUTH; a relay that refuses is a *TransactionError with its
// code (401 for wrong credentials, 403, ...).
func (c *ConnectorRelay) Prepare(ctx context.Context, localURI URI) ([]URI, error) {
	return c.rc.prepare(ctx, &c.ConnectConfig, &c.Relay, c.Resolver, localURI)
}

// Complete binds the session through the relay: To-Path is the Use-Path
// followed by the peer's path. It returns the transport; a session started
// on it renews the relay reservation before it expires.
func (c *ConnectorRelay) Complete(ctx context.Context, fullRemotePath []URI) (*MSRPTransport, error) {
	return c.rc.complete(ctx, &c.ConnectConfig, fullRemotePath, true)
}

// Cleanup stops a Prepare or Complete in progress and closes the relay
// connection unless Complete handed it out. It is safe to call more than
// once.
func (c *ConnectorRelay) Cleanup() error { return c.rc.cleanup() }

// Prepare is as for ConnectorRelay.
func (a *AcceptorRelay) Prepare(ctx context.Context, localURI URI) ([]URI, error) {
	return a.rc.prepare(ctx, &a.ConnectConfig, &a.Relay, a.Resolver, localURI)
}

// Complete waits on the relay connection for the peer's first SEND, whose
// From-Path must be the Use-Path followed by the peer's path, and returns
// the bound transport.
func (a *AcceptorRelay) Complete(ctx context.Context, fullRemotePath []URI) (*MSRPTransport, error) {
	return a.rc.complete(ctx, &a.ConnectConfig, fullRemotePath, false)
}

// Cleanup is as for ConnectorRelay.
func (a *AcceptorRelay) Cleanup() error { return a.rc.cleanup() }

// relayConnection is what ConnectorRelay and AcceptorRelay share.
type relayConnection struct {
	mu      sync.Mutex
	t       *MSRPTransport
	handed  bool
	cleaned bool
	cancel  context.CancelFunc // of a Prepare or Complete in progress: Cleanup calls it
}

// begin starts a Prepare or Complete that Cleanup can stop. Called with
// rc.mu held.
func (rc *relayConnection) begin(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	rc.cancel = cancel
	return ctx, cancel
}

func (rc *relayConnection) prepare(ctx context.Context, cfg *ConnectConfig, relay *MSRPRelaySettings, resolver SRVResolver, localURI URI) ([]URI, error) {
	rc.mu.Lock()
	switch {
	case rc.cleaned:
		rc.mu.Unlock()
		return nil, errCleanedUp
	case rc.t != nil:
		rc.mu.Unlock()
		return nil, errors.New("msrp: relay connection already prepared")
	}
	ctx, cancel := rc.begin(ctx)
	defer cancel()
	rc.mu.Unlock()

	stage, stop := withStage(ctx, cfg.connectTimeout(), ErrRelayConnectTimeout)
	defer stop()
	local := completeLocalURI(localURI)
	if relay.WebSocket {
		local = webSocketLocalURI(localURI)
		local.UseTLS = !relay.DisableTLS
	}
	t, err := dialRelay(stage, cfg, relay, resolver, local)
	if err != nil {
		return nil, stageError(ctx, stage, ErrRelayConnectTimeout, err)
	}
	if local.Port == 0 {
		if tcp, ok := t.LocalAddr().(*net.TCPAddr); ok {
			local.Port = tcp.Port // as msrplib: the relay connection's own port
			t.setLocalURI(local)
		}
	}
	ra := &relayAuth{settings: *relay, local: local, timeout: DefaultTimeout, log: cfg.Logger}
	if err := ra.authenticate(stage, deliverOnTransport(t)); err != nil {
		cfg.Logger.event("could not reserve a session at the relay", "relay", relay.String(), "error", err.Error())
		t.Close()
		if errors.Is(err, ErrAuthTimeout) {
			return nil, err
		}
		return nil, stageError(ctx, stage, ErrRelayConnectTimeout, err)
	}
	t.SetLocalPath(ra.usePath)
	t.maintain = func(ctx context.Context, deliver deliverFunc) { ra.maintain(ctx, deliver, t) }
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.cleaned {
		t.Close()
		return nil, errCleanedUp
	}
	rc.t = t
	return t.FullLocalPath(), nil
}

// dialRelay connects to the first relay address that answers.
func dialRelay(ctx context.Context, cfg *ConnectConfig, relay *MSRPRelaySettings, resolver SRVResolver, local URI) (*MSRPTransport, error) {
	tlsCfg := cloneTLS(relay.TLSConfig)
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = relay.tlsName()
	}
	var errs []error
	for _, addr := range relayAddrs(ctx, relay, resolver, cfg.Logger) {
		cfg.Logger.event("connecting to relay", "addr", addr)
		to := relay.URI()
		host, port, _ := net.SplitHostPort(addr)
		to.Host = host
		to.Port, _ = strconv.Atoi(port)
		t, err := cfg.open(ctx, to, local, tlsCfg)
		if err == nil {
			return t, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("msrp: cannot connect to relay: %w", errors.Join(errs...))
}

func (rc *relayConnection) complete(ctx context.Context, cfg *ConnectConfig, fullRemotePath []URI, active bool) (*MSRPTransport, error) {
	if len(fullRemotePath) == 0 {
		return nil, errors.New("msrp: empty remote path")
	}
	rc.mu.Lock()
	t := rc.t
	switch {
	case rc.cleaned:
		rc.mu.Unlock()
		return nil, errCleanedUp
	case t == nil:
		rc.mu.Unlock()
		return nil, errors.New("msrp: Complete called before Prepare")
	case rc.handed:
		rc.mu.Unlock()
		return nil, errors.New("msrp: Complete already called")
	}
	rc.handed = true
	ctx, cancel := rc.begin(ctx)
	defer cancel()
	rc.mu.Unlock()

	stage, stop := withStage(ctx, cfg.bindTimeout(), ErrBindSessionTimeout)
	defer stop()
	var err error
	if active {
		err = t.Bind(stage, fullRemotePath)
	} else {
		// A request with the wrong paths is answered (481) and the wait
		// goes on, as AcceptorDirect's does: giving up would end the
		// reservation for the right peer.
		for err = t.AcceptBinding(stage, fullRemotePath); isRefusal(err) && stage.Err() == nil; {
			err = t.AcceptBinding(stage, fullRemotePath)
		}
	}
	if err != nil {
		t.Close()
		return nil, stageError(ctx, stage, ErrBindSessionTimeout, err)
	}
	return t, nil
}

func (rc *relayConnection) cleanup() error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.cleaned = true
	if rc.cancel != nil {
		rc.cancel()
	}
	if rc.t != nil && !rc.handed {
		return rc.t.Close()
	}
	return nil
}
