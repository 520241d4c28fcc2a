package msrp

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// AnswerSDP makes the answer to an MSRP offer from ours, this end's
// section (its path, accept-types, max-size, setup, fingerprints, CEMA),
// by RFC 4975 §8, RFC 6135 and RFC 5547:
//   - accept-types and accept-wrapped-types are what both accept; none in
//     common is ErrSDPNoCommonType, which SIP answers with 488 (§8.6);
//   - a=setup answers the offer's: passive to active, active to passive,
//     and to actpass ours if it says active or passive, else passive, as
//     RFC 6135 §4.2.2 advises a UA that is not behind a NAT;
//   - a=msrp-cema only when the offer has it and ours does;
//   - sendonly is answered recvonly and the other way round;
//   - a file offered is described back as RFC 5547 §8.3 says: its
//     selector's name, type, size and hash and its file-transfer-id.
//
// The offer must be a valid MSRP section (SDP.MSRP checks it).
func AnswerSDP(offer, ours *SDPMedia) (*SDPMedia, error) {
	if err := offer.check(); err != nil {
		return nil, err
	}
	a := *ours
	a.Attributes = slices.Clone(ours.Attributes)
	a.AcceptTypes = intersectTypes(ours.AcceptTypes, offer.AcceptTypes)
	if len(a.AcceptTypes) == 0 {
		return nil, fmt.Errorf("%w: we take %q, the offer %q", ErrSDPNoCommonType, ours.AcceptTypes, offer.AcceptTypes)
	}
	if len(ours.AcceptWrappedTypes) > 0 && len(offer.AcceptWrappedTypes) > 0 {
		a.AcceptWrappedTypes = intersectTypes(ours.AcceptWrappedTypes, offer.AcceptWrappedTypes)
	}
	switch offer.Setup {
	case SetupPassive:
		a.Setup = SetupActive
	case SetupActPass:
		if a.Setup != SetupActive {
			a.Setup = SetupPassive
		}
	default: // active, or absent, which RFC 4145 §4.1 reads as active
		a.Setup = SetupPassive
	}
	a.CEMA = offer.CEMA && ours.CEMA
	a.Direction = answerDirection(offer.Direction, ours.Direction)
	if offer.File != nil {
		f := *offer.File
		a.File = &f
		a.FileTransferID = offer.FileTransferID
		a.FileRange = offer.FileRange
		a.FileDisposition, a.FileDate, a.FileIcon = "", FileDates{}, ""
	}
	return &a, nil
}

// answerDirection is the direction of an answer (RFC 3264 §6.1): we send
// only what the offerer takes and take only what it sends.
func answerDirection(offer, ours SDPDirection) SDPDirection {
	sends := func(d SDPDirection) bool { return d != DirectionRecvOnly && d != DirectionInactive }
	takes := func(d SDPDirection) bool { return d != DirectionSendOnly && d != DirectionInactive }
	send, take := sends(ours) && takes(offer), takes(ours) && sends(offer)
	switch {
	case send && take:
		if offer == DirectionUnset && ours == DirectionUnset {
			return DirectionUnset
		}
		return DirectionSendRecv
	case send:
		return DirectionSendOnly
	case take:
		return DirectionRecvOnly
	}
	return DirectionInactive
}

// intersectTypes returns the entries of ours that theirs accepts too, the
// wildcards of either narrowed to the other's entries.
func intersectTypes(ours, theirs []string) []string {
	var out []string
	add := func(t string) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	for _, t := range ours {
		switch {
		case t == "*":
			for _, u := range theirs {
				add(u)
			}
		case strings.HasSuffix(t, "/*"):
			for _, u := range theirs {
				switch {
				case u == "*":
					add(t)
				case containsMIMEType([]string{t}, u):
					add(u)
				case strings.HasSuffix(u, "/*") && strings.EqualFold(u, t):
					add(t)
				}
			}
		case containsMIMEType(theirs, t):
			add(t)
		}
	}
	return out
}

// SDPNegotiation is the outcome of an MSRP offer and answer: who connects,
// and what each end takes. NegotiateSDP makes one.
type SDPNegotiation struct {
	Local, Remote *SDPMedia // this end's section and the peer's
	Offerer       bool      // this end made the offer
	// Active: this end opens the connection (a connector), else it waits
	// for the peer's (an acceptor).
	Active bool
	// CEMA: both ends signalled a=msrp-cema (RFC 6714): incoming paths are
	// matched by session id, and the active end connects to the peer's
	// c= address and m= port instead of its path's first URI.
	CEMA bool
}

// NegotiateSDP settles an offer/answer exchange, from this end's view:
// local is our section (the offer we made, or the answer we gave), remote
// the peer's. The end that opens the connection follows RFC 4975 §5.4 (the
// offerer, when neither says a=setup) and RFC 6135: an answer's active or
// passive decides; actpass in an answer, or both ends active or both
// passive, is ErrSDPSetupConflict.
func NegotiateSDP(local, remote *SDPMedia, offerer bool) (*SDPNegotiation, error) {
	if err := remote.check(); err != nil {
		return nil, err
	}
	offer, answer := local, remote
	if !offerer {
		offer, answer = remote, local
	}
	// RFC 4145 §4.1: absent, a=setup is active in an offer and passive in
	// an answer, which is RFC 4975 §5.4's rule for peers that never say it.
	offerSetup, answerSetup := offer.Setup, answer.Setup
	if offerSetup == SetupUnset {
		offerSetup = SetupActive
	}
	if answerSetup == SetupUnset {
		answerSetup = SetupPassive
	}
	var offererActive bool
	switch answerSetup {
	case SetupActive:
		offererActive = false
	case SetupPassive:
		offererActive = true
	default:
		return nil, fmt.Errorf("%w: an answer cannot say actpass", ErrSDPSetupConflict)
	}
	if offerSetup == SetupActive && !offererActive || offerSetup == SetupPassive && offererActive {
		return nil, fmt.Errorf("%w: offer %q, answer %q", ErrSDPSetupConflict, offer.Setup, answer.Setup)
	}
	return &SDPNegotiation{
		Local: local, Remote: remote, Offerer: offerer,
		Active: offererActive == offerer,
		CEMA:   local.CEMA && remote.CEMA,
	}, nil
}

// RemotePath is the peer's a=path, to give Complete or StartSession.
func (n *SDPNegotiation) RemotePath() []URI { return n.Remote.Path }

// CanSend and CanReceive tell whether messages may go out and come in, by
// the direction attributes (RFC 4975 §8.9).
func (n *SDPNegotiation) CanSend() bool {
	return n.Local.Direction != DirectionRecvOnly && n.Local.Direction != DirectionInactive &&
		n.Remote.Direction != DirectionSendOnly && n.Remote.Direction != DirectionInactive
}

// CanReceive is CanSend the other way.
func (n *SDPNegotiation) CanReceive() bool {
	return n.Local.Direction != DirectionSendOnly && n.Local.Direction != DirectionInactive &&
		n.Remote.Direction != DirectionRecvOnly && n.Remote.Direction != DirectionInactive
}

// PeerAccepts tells whether the peer's accept-types take contentType: RFC
// 4975 §8.6 forbids sending any other.
func (n *SDPNegotiation) PeerAccepts(contentType string) bool {
	return containsMIMEType(n.Remote.AcceptTypes, contentType)
}

// SessionConfig returns base with what the exchange settled: the types we
// take (our accept-types, anything else refused with 415), the largest
// message we take (our max-size) and the largest the peer takes; a limit
// of base's that is smaller, or that the SDP does not give, stays.
func (n *SDPNegotiation) SessionConfig(base SessionConfig) SessionConfig {
	base.AcceptTypes = slices.Clone(n.Local.AcceptTypes)
	if n.Local.MaxSize > 0 && (base.MaxSize <= 0 || n.Local.MaxSize < base.MaxSize) {
		base.MaxSize = n.Local.MaxSize
	}
	if n.Remote.MaxSize > 0 && (base.PeerMaxSize <= 0 || n.Remote.MaxSize < base.PeerMaxSize) {
		base.PeerMaxSize = n.Remote.MaxSize
	}
	return base
}

// TLSConfig returns base, cloned, set to check the peer's certificate
// against its a=fingerprint (RFC 4975 §14.4) when it gave one: the chain
// is not checked then, the fingerprint is. A passive end also asks the
// peer for its certificate. Without a fingerprint it returns base.
func (n *SDPNegotiation) TLSConfig(base *tls.Config) (*tls.Config, error) {
	if len(n.Remote.Fingerprints) == 0 {
		return base, nil
	}
	var checks []func(tls.ConnectionState) error
	for _, f := range n.Remote.Fingerprints {
		verify, err := VerifyFingerprint(f)
		if err != nil {
			return nil, err
		}
		checks = append(checks, verify)
	}
	cfg := cloneTLS(base)
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		var err error
		for _, check := range checks { // any of them (RFC 8122 §5.1)
			if err = check(cs); err == nil {
				return nil
			}
		}
		return err
	}
	if !n.Active {
		cfg.ClientAuth = tls.RequireAnyClientCert
	}
	return cfg, nil
}

// Connector returns the connector for this end: GetConnector when it is
// active, else GetAcceptor, with relay settings when relay is not nil.
// Prepare it with the URI the local section's path ends with. Under CEMA
// it matches paths by session id, and an active end without a relay dials
// the peer's c= address and m= port.
func (n *SDPNegotiation) Connector(relay *MSRPRelaySettings, cfg ConnectConfig) Connector {
	if n.CEMA {
		cfg.UseSessmatch = true
		if n.Active && relay == nil {
			cfg.Dial = n.cemaDial(cfg.Dial)
		}
	}
	if n.Active {
		return GetConnector(relay, cfg)
	}
	return GetAcceptor(relay, cfg)
}

// Complete completes c, which was prepared before the answer was known
// (to offer actpass), in the role the exchange settled, and returns the
// bound transport for NewMSRPSession:
//   - a relay connection (ConnectorRelay or AcceptorRelay) takes either
//     role on the connection it prepared: the active end sends the first
//     SEND, the passive end waits for the peer's (RFC 6135 §4.5: a UA
//     behind a relay always connects to the relay itself);
//   - an AcceptorDirect whose end turns out active connects from the URI
//     it offered, and stops listening;
//   - any other connector completes as it is.
func (n *SDPNegotiation) Complete(ctx context.Context, c Connector) (*MSRPTransport, error) {
	switch c := c.(type) {
	case *ConnectorRelay:
		return c.rc.complete(ctx, &c.ConnectConfig, n.RemotePath(), n.Active)
	case *AcceptorRelay:
		return c.rc.complete(ctx, &c.ConnectConfig, n.RemotePath(), n.Active)
	case *AcceptorDirect:
		if n.Active {
			c.mu.Lock()
			local := c.local
			c.mu.Unlock()
			defer c.Cleanup()
			d := &ConnectorDirect{ConnectConfig: c.ConnectConfig}
			if _, err := d.Prepare(ctx, local); err != nil {
				return nil, err
			}
			return d.Complete(ctx, n.RemotePath())
		}
	}
	return c.Complete(ctx, n.RemotePath())
}

// cemaDial sends a dial to the peer's path to its c= address and m= port.
func (n *SDPNegotiation) cemaDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	host := n.Remote.Address
	if host == "" {
		return dial
	}
	target := net.JoinHostPort(host, strconv.Itoa(n.Remote.Port))
	first := n.Remote.Path[0].HostPort()
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == first {
			addr = target
		}
		return dial(ctx, network, addr)
	}
}
