package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/go-msrp/msrp"
)

// This file is the MSRP side of the offer/answer: what each end prepares
// for its m=message section, how the exchange decides who connects, and
// the session that results.

// media is how an endpoint reaches MSRP: directly, or through a relay.
type media struct {
	relay *msrp.MSRPRelaySettings // nil: direct
	cfg   msrp.ConnectConfig
}

// isActive tells whether a prepared connector opens the connection.
func isActive(c msrp.Connector) bool {
	switch c.(type) {
	case *msrp.ConnectorDirect, *msrp.ConnectorRelay:
		return true
	}
	return false
}

// offerSetup is the a=setup an offerer can promise. Directly, actpass:
// it listens, and if the answer makes it the active end after all, it
// connects from the same URI. Through a relay it must choose before it
// offers: ConnectorRelay and AcceptorRelay each make their own reservation
// at the relay, so the path offered belongs to one of them. It offers
// active then (the usual role of an offerer, RFC 4975 §5.4), or passive
// when the demo asks the answerer to connect.
func (m media) offerSetup(answererConnects bool) msrp.SDPSetup {
	switch {
	case m.relay == nil:
		return msrp.SetupActPass
	case answererConnects:
		return msrp.SetupPassive
	}
	return msrp.SetupActive
}

// offer is an offerer's MSRP stream waiting for its answer.
type offer struct {
	m       media
	section *msrp.SDPMedia
	conn    msrp.Connector // prepared: section's path is its
}

// newOffer prepares the connector that section's a=setup calls for and
// writes its path into section.
func (m media) newOffer(ctx context.Context, section *msrp.SDPMedia) (*offer, error) {
	var conn msrp.Connector
	if section.Setup == msrp.SetupActive || section.Setup == msrp.SetupUnset {
		conn = msrp.GetConnector(m.relay, m.cfg)
	} else { // passive or actpass: the peer may connect to us
		conn = msrp.GetAcceptor(m.relay, m.cfg)
	}
	path, err := conn.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
	if err != nil {
		_ = conn.Cleanup()
		return nil, fmt.Errorf("preparing the offer's a=path: %w", err)
	}
	section.UsePath(path)
	if isActive(conn) {
		section.Port = 9 // nothing listens: the discard port, RFC 6135 §4.2.2
	}
	return &offer{m: m, section: section, conn: conn}, nil
}

// sdp is the offer's session description.
func (o *offer) sdp() []byte { return msrp.NewSDP(rand.Int64N(1<<62), 1, o.section).Marshal() }

// cancel gives up the prepared connector, when the call fails.
func (o *offer) cancel() { _ = o.conn.Cleanup() }

// start settles the exchange with the answer and starts the session: the
// offerer connects when the answer says passive (or says nothing), else
// waits for the answerer to connect. Either way this happens after the
// 200 OK, which the answer came in.
func (o *offer) start(ctx context.Context, answer []byte, base msrp.SessionConfig) (*msrp.MSRPSession, *msrp.SDPNegotiation, error) {
	remote, err := msrpSection(answer)
	if err != nil {
		o.cancel()
		return nil, nil, fmt.Errorf("the answer: %w", err)
	}
	neg, err := msrp.NegotiateSDP(o.section, remote, true)
	if err != nil {
		o.cancel()
		return nil, nil, err
	}
	conn := o.conn
	switch {
	case neg.Active && !isActive(conn) && o.m.relay == nil:
		// actpass, answered passive: connect, from the URI offered.
		conn = neg.Connector(nil, o.m.cfg)
		own := o.section.Path[len(o.section.Path)-1]
		if _, err := conn.Prepare(ctx, own); err != nil {
			o.cancel()
			return nil, nil, err
		}
		o.cancel() // the listener is not needed
	case neg.Active != isActive(conn):
		o.cancel()
		return nil, nil, fmt.Errorf("%w: the answer's a=setup:%s asks for the role this end did not prepare", msrp.ErrSDPSetupConflict, remote.Setup)
	}
	s, err := msrp.StartSession(ctx, conn, neg.RemotePath(), neg.SessionConfig(base))
	if err != nil {
		return nil, nil, fmt.Errorf("starting the MSRP session: %w", err)
	}
	return s, neg, nil
}

// answer is an answerer's MSRP stream: its section for the SDP answer and
// the connector the exchange calls for.
type answer struct {
	section *msrp.SDPMedia
	neg     *msrp.SDPNegotiation
	conn    msrp.Connector
}

// newAnswer answers the MSRP offer in offerSDP with ours (accept-types,
// max-size, a=setup if we insist on one) and prepares the connector for
// this end's role. The role is known before the path, so the connector is
// the negotiation's own: SDPNegotiation.Connector, through the relay if
// there is one.
func (m media) newAnswer(ctx context.Context, offerSDP []byte, ours *msrp.SDPMedia) (*answer, error) {
	offered, err := msrpSection(offerSDP)
	if err != nil {
		return nil, err
	}
	section, err := msrp.AnswerSDP(offered, ours)
	if err != nil {
		return nil, err
	}
	neg, err := msrp.NegotiateSDP(section, offered, false)
	if err != nil {
		return nil, err
	}
	conn := neg.Connector(m.relay, m.cfg)
	path, err := conn.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
	if err != nil {
		_ = conn.Cleanup()
		return nil, fmt.Errorf("preparing the answer's a=path: %w", err)
	}
	section.UsePath(path)
	if neg.Active {
		section.Port = 9
	}
	return &answer{section: section, neg: neg, conn: conn}, nil
}

// sdp is the answer's session description.
func (a *answer) sdp() []byte { return msrp.NewSDP(rand.Int64N(1<<62), 1, a.section).Marshal() }

// start starts the answerer's session: it waits for the offerer's
// connection, or connects.
func (a *answer) start(ctx context.Context, base msrp.SessionConfig) (*msrp.MSRPSession, error) {
	s, err := msrp.StartSession(ctx, a.conn, a.neg.RemotePath(), a.neg.SessionConfig(base))
	if err != nil {
		return nil, fmt.Errorf("starting the MSRP session: %w", err)
	}
	return s, nil
}

// msrpSection reads a session description and returns its MSRP section.
func msrpSection(body []byte) (*msrp.SDPMedia, error) {
	d, err := msrp.ParseSDP(body)
	if err != nil {
		return nil, err
	}
	return d.MSRP()
}

// accept answers an incoming call whose MSRP stream a is, and starts the
// session on the side a's role says. A passive answerer waits for the
// connection from before its 200 OK goes out. An active one connects only
// once the ACK is in: the offerer may not accept connections until it has
// processed the 200 (doubango-based clients, for one, only then start
// listening), and the ACK says that it has.
func (a *answer) accept(ctx context.Context, c *incomingCall, base msrp.SessionConfig) (*msrp.MSRPSession, error) {
	if a.neg.Active {
		if err := c.accept(a.sdp()); err != nil {
			_ = a.conn.Cleanup()
			return nil, err
		}
		return a.start(ctx, base)
	}
	type result struct {
		s   *msrp.MSRPSession
		err error
	}
	started := make(chan result, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		s, err := a.start(ctx, base)
		started <- result{s, err}
	}()
	if err := c.accept(a.sdp()); err != nil {
		cancel()
		if r := <-started; r.s != nil {
			r.s.Close()
		}
		return nil, err
	}
	r := <-started
	return r.s, r.err
}

// endSession shuts s down gracefully and reports how it ended: Shutdown's
// error, else Err, which is nil when nothing was lost.
func endSession(ctx context.Context, s *msrp.MSRPSession) error {
	if err := s.Shutdown(ctx); err != nil {
		return err
	}
	<-s.Done()
	if err := s.Err(); err != nil {
		return errors.Join(errors.New("the session lost something"), err)
	}
	return nil
}
