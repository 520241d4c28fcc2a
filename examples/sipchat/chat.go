package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/cpim"
)

// idleTimeout is how long a user may stop typing before the composer says
// idle. RFC 3994 advises 15 s; the demo's users are quicker, and it shows
// the timer at work without a wait.
const idleTimeout = 400 * time.Millisecond

// chatAcceptTypes and chatWrappedTypes are what both ends take in the chat
// stream: CPIM (and plain text, for clients that send it bare), and inside
// CPIM text, isComposing indications and IMDNs (RFC 4975 §8.6).
var (
	chatAcceptTypes  = []string{cpim.ContentTypeCPIM, "text/plain"}
	chatWrappedTypes = []string{"text/plain", cpim.ContentTypeIsComposing, cpim.ContentTypeIMDN}
)

// chatter is one end of the chat: its session, the composer that tells the
// peer when this user types, and the watcher that follows the peer's.
type chatter struct {
	me, peer *endpoint
	session  *msrp.MSRPSession
	neg      *msrp.SDPNegotiation
	log      *transcript
	composer *cpim.Composer
	watcher  *cpim.Watcher
	got      chan received // what the peer sent, in order, once printed
	done     chan struct{} // closed when the receiving loop has ended

	mu      sync.Mutex
	sendErr error // the first indication that could not be sent
}

// received is a message taken in: its kind (composing, text, imdn) and
// what it said, or what went wrong.
type received struct {
	kind, text string
	err        error
}

func newChatter(ctx context.Context, me, peer *endpoint, s *msrp.MSRPSession, neg *msrp.SDPNegotiation, log *transcript) *chatter {
	c := &chatter{me: me, peer: peer, session: s, neg: neg, log: log, got: make(chan received, 64), done: make(chan struct{})}
	c.composer = cpim.NewComposer(cpim.ComposerConfig{IdleTimeout: idleTimeout, ContentType: "text", Send: func(ic *cpim.IsComposing) {
		// On the composer's goroutine, with its lock held: indications go
		// out in order, each answered before the next.
		body, err := ic.Marshal()
		if err == nil {
			err = c.send(ctx, c.wrap(cpim.ContentTypeIsComposing, body))
		}
		if err != nil {
			c.mu.Lock()
			if c.sendErr == nil {
				c.sendErr = fmt.Errorf("isComposing %s: %w", ic.State, err)
			}
			c.mu.Unlock()
		}
	}})
	c.watcher = cpim.NewWatcher(func(s cpim.State) {
		if s == cpim.StateActive {
			c.log.note(me.name, "composing", peer.name+" is typing…")
		} else {
			c.log.note(me.name, "composing", peer.name+" stopped typing")
		}
	})
	go c.receive(ctx)
	return c
}

// baseType is a media type without its parameters, in lower case.
func baseType(contentType string) string {
	t, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// wrap puts body in a CPIM message from this user to the peer.
func (c *chatter) wrap(contentType string, body []byte) *cpim.Message {
	return cpim.Wrap(cpim.Address{Name: c.me.display, URI: c.me.aor()}, cpim.Address{Name: c.peer.display, URI: c.peer.aor()}, contentType, body)
}

// send sends a CPIM message, if the peer's SDP says it takes CPIM and the
// type inside (RFC 4975 §8.6 forbids sending it anything else).
func (c *chatter) send(ctx context.Context, m *cpim.Message) error {
	if !c.neg.PeerAccepts(cpim.ContentTypeCPIM) {
		return fmt.Errorf("%s does not take %s", c.peer.name, cpim.ContentTypeCPIM)
	}
	if w := c.neg.Remote.AcceptWrappedTypes; !slices.Contains(w, "*") && !slices.ContainsFunc(w, func(t string) bool { return baseType(t) == baseType(m.ContentType) }) {
		return fmt.Errorf("%s does not take %s inside CPIM", c.peer.name, m.ContentType)
	}
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	return c.session.Send(ctx, cpim.ContentTypeCPIM, b, msrp.MessageOptions{})
}

// say is the user typing text and sending it, as a chat client does it:
// the first keystroke sends an active indication; with pause, the user
// stops for longer than the idle timeout, the composer says idle, and the
// typing resumes; sending the message returns the composer to idle without
// an indication, since the message itself tells the peer (RFC 3994 §3.2,
// §3.3), and its watcher says so. The message asks for a delivery
// notification (RFC 5438), which the peer sends back.
func say(ctx context.Context, from, to *chatter, text string, pause bool) error {
	// Typing returns once the indication has been answered, so the peer
	// has it; what the peer prints is awaited after the composer is idle
	// again, lest its idle timer fire in between on a slow machine.
	from.composer.Typing()
	if pause {
		if err := to.expect(ctx, from, "composing", "active"); err != nil {
			return err
		}
		if err := to.expect(ctx, from, "composing", "idle"); err != nil {
			return err
		}
		from.composer.Typing()
	}
	from.composer.Sent()
	if err := to.expect(ctx, from, "composing", "active"); err != nil {
		return err
	}
	m := from.wrap("text/plain; charset=utf-8", []byte(text))
	m.RequestIMDN("", cpim.PositiveDelivery)
	if err := from.send(ctx, m); err != nil {
		return fmt.Errorf("%s's message: %w", from.me.name, err)
	}
	if err := to.expect(ctx, from, "text", text); err != nil {
		return err
	}
	return from.expect(ctx, to, "imdn", string(cpim.StatusDelivered))
}

// expect waits for the next message from sender to be of kind and say
// text.
func (c *chatter) expect(ctx context.Context, sender *chatter, kind, text string) error {
	select {
	case r := <-c.got:
		switch {
		case r.err != nil:
			return fmt.Errorf("%s, waiting for %s %q: %w", c.me.name, kind, text, r.err)
		case r.kind != kind || r.text != text:
			return fmt.Errorf("%s expected %s %q from %s, got %s %q", c.me.name, kind, text, sender.me.name, r.kind, r.text)
		}
		return nil
	case <-ctx.Done():
		sender.mu.Lock()
		defer sender.mu.Unlock()
		return fmt.Errorf("%s got no %s %q from %s: %w", c.me.name, kind, text, sender.me.name, errors.Join(ctx.Err(), sender.sendErr))
	}
}

// receive takes in the peer's messages until the session ends, prints
// each, and answers delivery notification requests.
func (c *chatter) receive(ctx context.Context) {
	defer close(c.done)
	for {
		in, err := c.session.Receive(ctx)
		if errors.Is(err, msrp.ErrSessionClosed) || ctx.Err() != nil {
			return
		}
		r := c.take(ctx, in, err)
		select {
		case c.got <- r:
		case <-ctx.Done():
			return
		}
	}
}

// take reads one incoming message.
func (c *chatter) take(ctx context.Context, in *msrp.IncomingMessage, err error) received {
	if err != nil {
		return received{err: err}
	}
	m, err := cpim.Parse(in.Data)
	if err != nil {
		return received{err: fmt.Errorf("%s sent a %s that is not CPIM: %w", c.peer.name, in.ContentType, err)}
	}
	switch baseType(m.ContentType) {
	case cpim.ContentTypeIsComposing:
		ic, err := cpim.ParseIsComposing(m.Body)
		if err != nil {
			return received{err: err}
		}
		detail := string(ic.State)
		if ic.Refresh > 0 {
			detail += fmt.Sprintf(", refresh %d s", int(ic.Refresh.Seconds()))
		}
		if !ic.LastActive.IsZero() {
			detail += ", last active " + ic.LastActive.Format(time.TimeOnly)
		}
		c.log.msrp(c.peer.name, c.me.name, "composing", in.ContentType+" ⟨"+cpim.ContentTypeIsComposing+"⟩ "+detail)
		c.watcher.Indication(ic)
		return received{kind: "composing", text: string(ic.State)}
	case cpim.ContentTypeIMDN:
		n, err := m.Notification()
		if err != nil {
			return received{err: err}
		}
		c.log.msrp(c.peer.name, c.me.name, "imdn", fmt.Sprintf("%s ⟨%s⟩ %s %s, for imdn.Message-ID %s", in.ContentType, cpim.ContentTypeIMDN, n.Kind, n.Status, n.MessageID))
		return received{kind: "imdn", text: string(n.Status)}
	case "text/plain":
		c.log.msrp(c.peer.name, c.me.name, "text", fmt.Sprintf("%s (From: %s, To: %s, DateTime: %s) ⟨%s⟩ %q",
			in.ContentType, m.From, m.To[0], m.DateTime.Format(time.RFC3339), m.ContentType, m.Body))
		c.watcher.MessageReceived()
		if req, ok := m.IMDNRequest(); ok && req.Wants(cpim.PositiveDelivery) {
			n, err := cpim.NotificationFor(m, cpim.KindDelivery, cpim.StatusDelivered)
			if err == nil {
				err = c.send(ctx, n)
			}
			if err != nil {
				return received{err: fmt.Errorf("the delivery notification: %w", err)}
			}
		}
		return received{kind: "text", text: string(m.Body)}
	}
	c.log.msrp(c.peer.name, c.me.name, "other", in.ContentType+" ⟨"+m.ContentType+"⟩, which this chat does not show")
	return received{kind: "other", text: m.ContentType}
}

// stop ends the composing timers; the session is ended by the BYE.
func (c *chatter) stop() {
	c.composer.Stop()
	c.watcher.Stop()
}
