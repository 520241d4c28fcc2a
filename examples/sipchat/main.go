// Command sipchat is a whole SIP chat call on loopback: two user agents
// built with github.com/emiago/sipgo set up MSRP sessions by SDP offer and
// answer, as SIP SIMPLE clients (Blink, RCS phones) do, and the msrp
// package carries them.
//
//   - Alice calls Bob: INVITE with an MSRP offer, 200 OK with Bob's
//     answer (msrp.AnswerSDP), ACK. msrp.NegotiateSDP tells each end
//     whether it connects (by a=setup); the one that does connects after
//     the 200 OK, and an answerer only once the ACK is in.
//   - They chat in message/cpim, each message announced by an isComposing
//     indication (RFC 3994) and answered by a delivery notification (RFC
//     5438), with the cpim package.
//   - Alice sends Bob a photo in a second call of its own (RFC 5547 push:
//     sendonly, a=file-selector); Bob checks its size and SHA-1 against
//     the selector.
//   - BYE ends each call, and each end shuts its MSRP session down; both
//     end with nothing lost.
//
// Every SIP request and response and every MSRP message is one line of
// output, printed by the user agent that received it.
//
//	go run ./examples/sipchat                  # SIP over UDP, MSRP direct
//	go run ./examples/sipchat -transport tcp   # SIP over TCP
//	go run ./examples/sipchat -bob-active      # Bob answers a=setup:active and connects
//	go run ./examples/sipchat -kamailio        # SIP and MSRP through Kamailio
//	go run ./examples/sipchat -proxy 127.0.0.1:5060 -relay 'msrp://user:pw@127.0.0.1:2855'
//
// -kamailio starts Kamailio from testdata/kamailio on free loopback ports
// as a stateless SIP proxy and an RFC 4976 MSRP relay (apt-get install
// kamailio); both user agents send their SIP through it and reserve their
// MSRP sessions at it, with AUTH.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/internal/testrelay"
)

// options are the demo's settings.
type options struct {
	transport string // SIP transport: "udp" or "tcp"
	bobActive bool   // Bob answers a=setup:active: he connects, once the ACK is in
	fileSize  int
	// alicePort and bobPort are their SIP ports on 127.0.0.1; 0 picks
	// free ones.
	alicePort, bobPort int
	// proxy is the SIP proxy both user agents send their calls to,
	// host:port; "" for none.
	proxy string
	// aliceRelay and bobRelay are the MSRP relays they reserve their
	// sessions at; nil for none.
	aliceRelay, bobRelay *msrp.MSRPRelaySettings
	logTraffic           bool // the MSRP traffic log on stderr
}

// stderr is where sipgo's errors and the traffic log go.
var stderr io.Writer = os.Stderr

func main() { os.Exit(sipchat()) }

// sipchat is main, returning the exit status once its deferred calls (and
// the Kamailio it may have started) are done.
func sipchat() int {
	o := options{}
	flag.StringVar(&o.transport, "transport", "udp", "SIP transport: udp or tcp")
	flag.BoolVar(&o.bobActive, "bob-active", false, "Bob answers a=setup:active and connects once the ACK is in")
	flag.IntVar(&o.fileSize, "size", 256<<10, "size in bytes of the file Alice sends")
	kamailio := flag.Bool("kamailio", false, "start Kamailio on loopback as the SIP proxy and MSRP relay")
	flag.StringVar(&o.proxy, "proxy", "", "send SIP through this proxy, `host:port`")
	relayURL := flag.String("relay", "", "reserve both MSRP sessions at this relay, `msrp://user:password@host:port`")
	flag.BoolVar(&o.logTraffic, "log", false, "write the MSRP traffic log to stderr")
	flag.Parse()
	usage := func(err error) int {
		fmt.Fprintln(os.Stderr, "sipchat:", err)
		flag.Usage()
		return 2
	}
	switch {
	case flag.NArg() > 0:
		return usage(errors.New("no arguments"))
	case o.transport != "udp" && o.transport != "tcp":
		return usage(errors.New("-transport is udp or tcp"))
	case o.fileSize < 1 || o.fileSize > 64<<20:
		return usage(errors.New("-size is 1 to 64 MiB"))
	case *kamailio && (o.proxy != "" || *relayURL != ""):
		return usage(errors.New("-kamailio runs its own proxy and relay: no -proxy or -relay with it"))
	}
	if *relayURL != "" {
		var err error
		if o.aliceRelay, err = msrp.ParseRelaySettings(*relayURL); err != nil {
			return usage(err)
		}
		o.bobRelay = o.aliceRelay
	}
	if *kamailio {
		r, err := testrelay.StartWith(testrelay.Options{SIP: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, "sipchat:", err)
			return 1
		}
		defer r.Stop()
		o.proxy, o.aliceRelay, o.bobRelay = kamailioSettings(r)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := run(ctx, os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "sipchat:", err)
		return 1
	}
	return 0
}

// kamailioSettings are the proxy and the relay settings of a Kamailio that
// testrelay runs: it takes any user name with its password.
func kamailioSettings(r *testrelay.Relay) (string, *msrp.MSRPRelaySettings, *msrp.MSRPRelaySettings) {
	relay := func(user string) *msrp.MSRPRelaySettings {
		return &msrp.MSRPRelaySettings{Domain: "127.0.0.1", Host: "127.0.0.1", Port: r.Port, DisableTLS: true,
			Username: user, Password: testrelay.Password}
	}
	return r.SIPAddr(), relay("alice"), relay("bob")
}

// run makes the calls and returns what happened, as printed on out.
func run(ctx context.Context, out io.Writer, o options) (*transcript, error) {
	log := &transcript{w: out}
	alice, err := newEndpoint(endpointConfig{name: "alice", transport: o.transport, port: o.alicePort, proxy: o.proxy,
		media: media{relay: o.aliceRelay, cfg: msrp.ConnectConfig{Logger: trafficLog(o, "alice")}}}, log)
	if err != nil {
		return log, err
	}
	defer alice.Close()
	// Bob takes each call on a goroutine of its own; how each ends comes
	// back on bobDone, his end of the chat on bobChat.
	bobChat := make(chan *chatter, 1)
	bobDone := make(chan error, 2)
	bob, err := newEndpoint(endpointConfig{name: "bob", transport: o.transport, port: o.bobPort, proxy: o.proxy,
		media:    media{relay: o.bobRelay, cfg: msrp.ConnectConfig{Logger: trafficLog(o, "bob")}},
		onInvite: func(c *incomingCall) { bobDone <- bobTakes(ctx, c.e, alice, c, o.bobActive, bobChat) }}, log)
	if err != nil {
		return log, err
	}
	defer bob.Close()
	describe(log, o, alice, bob)
	fail := func(err error) (*transcript, error) {
		select { // Bob's error, if he has one, says more
		case bobErr := <-bobDone:
			return log, errors.Join(err, bobErr)
		case <-time.After(500 * time.Millisecond):
			return log, err
		}
	}

	// The chat call.
	log.blank()
	section := &msrp.SDPMedia{AcceptTypes: chatAcceptTypes, AcceptWrappedTypes: chatWrappedTypes, Setup: alice.media.offerSetup(o.bobActive)}
	offer, err := alice.media.newOffer(ctx, section)
	if err != nil {
		return log, err
	}
	chatCall, err := alice.invite(ctx, bob, offer.sdp())
	if err != nil {
		offer.cancel()
		return fail(fmt.Errorf("the chat INVITE: %w", err))
	}
	s, neg, err := offer.start(ctx, chatCall.answer, msrp.SessionConfig{})
	if err != nil {
		return fail(errors.Join(err, alice.hangUp(ctx, bob, chatCall)))
	}
	defer s.Close()
	sessionUp(log, alice, bob, neg)
	aliceChat := newChatter(ctx, alice, bob, s, neg, log)
	defer aliceChat.stop()
	var bobsChat *chatter
	select {
	case bobsChat = <-bobChat:
		defer bobsChat.stop()
	case err := <-bobDone:
		return fail(errors.Join(err, alice.hangUp(ctx, bob, chatCall)))
	}

	log.blank()
	for _, line := range []struct {
		from, to *chatter
		text     string
		pause    bool // the user stops typing for a while before sending
	}{
		{aliceChat, bobsChat, "Hi Bob! Are you there?", false},
		{bobsChat, aliceChat, "Hi Alice, loud and clear.", true},
		{aliceChat, bobsChat, "Here is the photo from Saturday.", false},
	} {
		if err := say(ctx, line.from, line.to, line.text, line.pause); err != nil {
			return fail(err)
		}
	}

	// The file, in a call of its own.
	log.blank()
	if err := pushFile(ctx, alice, bob, o.fileSize, o.bobActive); err != nil {
		return fail(err)
	}
	if err := <-bobDone; err != nil {
		return fail(err)
	}

	log.blank()
	if err := say(ctx, bobsChat, aliceChat, "Got it, thanks! Talk soon.", false); err != nil {
		return fail(err)
	}

	// Hanging up: BYE, then each end shuts its session down.
	log.blank()
	if err := alice.hangUp(ctx, bob, chatCall); err != nil {
		return fail(err)
	}
	if err := endSession(ctx, s); err != nil {
		return fail(fmt.Errorf("alice's chat session: %w", err))
	}
	log.note(alice.name, "closed", "chat session closed cleanly (Err() = nil)")
	if err := <-bobDone; err != nil {
		return log, err
	}
	return log, nil
}

// bobTakes is Bob answering a call: a chat, or a file pushed to him. It
// returns when the call is over.
func bobTakes(ctx context.Context, bob, alice *endpoint, c *incomingCall, bobActive bool, chats chan<- *chatter) error {
	offered, err := msrpSection(c.offer)
	if err != nil {
		_ = c.reject(488, "Not Acceptable Here")
		return fmt.Errorf("bob: the offer: %w", err)
	}
	if offered.File != nil {
		return takeFile(ctx, bob, c, offered, bobActive)
	}
	ours := &msrp.SDPMedia{AcceptTypes: chatAcceptTypes, AcceptWrappedTypes: chatWrappedTypes}
	if bobActive {
		ours.Setup = msrp.SetupActive
	}
	a, err := bob.media.newAnswer(ctx, c.offer, ours)
	if err != nil {
		_ = c.reject(488, "Not Acceptable Here") // RFC 4975 §8.6, for no common type
		return fmt.Errorf("bob: the answer: %w", err)
	}
	s, err := a.accept(ctx, c, msrp.SessionConfig{})
	if err != nil {
		return fmt.Errorf("bob: %w", err)
	}
	defer s.Close()
	sessionUp(bob.log, bob, alice, a.neg)
	chats <- newChatter(ctx, bob, alice, s, a.neg, bob.log)
	select {
	case <-c.ended():
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := endSession(ctx, s); err != nil {
		return fmt.Errorf("bob's chat session: %w", err)
	}
	bob.log.note(bob.name, "closed", "chat session closed cleanly (Err() = nil)")
	return nil
}

// sessionUp says who connected to whom, as the negotiation decided.
func sessionUp(log *transcript, me, peer *endpoint, neg *msrp.SDPNegotiation) {
	how := fmt.Sprintf("waited for %s to connect", peer.name)
	if neg.Active {
		how = fmt.Sprintf("connected to %s's a=path", peer.name)
	}
	if me.media.relay != nil {
		how += " through the relay"
	}
	offer, answer := neg.Local.Setup, neg.Remote.Setup
	if !neg.Offerer {
		offer, answer = answer, offer
	}
	log.note(me.name, "session up", fmt.Sprintf("MSRP session up: %s (offer a=setup:%s, answer a=setup:%s)", how, orUnset(offer), orUnset(answer)))
}

func orUnset(s msrp.SDPSetup) string {
	if s == msrp.SetupUnset {
		return "(none)"
	}
	return string(s)
}

// describe prints who is where.
func describe(log *transcript, o options, alice, bob *endpoint) {
	for _, e := range []*endpoint{alice, bob} {
		u := e.uri()
		log.note(e.name, "setup", fmt.Sprintf("SIP user agent at %s (%s)", u.String(), o.transport))
	}
	if o.proxy != "" {
		log.note("both", "setup", "SIP through the proxy "+o.proxy+" (Record-Route keeps the dialogs on it)")
	}
	for _, e := range []*endpoint{alice, bob} {
		if r := e.media.relay; r != nil {
			log.note(e.name, "setup", fmt.Sprintf("MSRP through the relay %s, as %s (AUTH; chunks of 8 KiB)", r.URI(), r.Username))
		}
	}
}

// trafficLog is the MSRP traffic log of who, when asked for.
func trafficLog(o options, who string) *msrp.Logger {
	if !o.logTraffic {
		return nil
	}
	return &msrp.Logger{Slog: slog.New(slog.NewTextHandler(stderr, nil)), Prefix: "[" + who + "] ", LogTraffic: true}
}
