package msrp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/go-msrp/msrp"
)

// sipCall stands in for SIP in these examples: it hands our a=path to a
// peer in this process, which prepares the other side (passive if we are
// active, and the other way round), starts its session and runs peer on it.
// It returns the peer's a=path, as the SDP answer or offer would bring it,
// and a channel closed once peer has returned and its session has ended.
func sipCall(ours []msrp.URI, weAreActive bool, peer func(s *msrp.MSRPSession)) ([]msrp.URI, <-chan struct{}) {
	ctx := context.Background()
	c := msrp.GetConnector(nil, msrp.ConnectConfig{})
	if weAreActive {
		c = msrp.GetAcceptor(nil, msrp.ConnectConfig{})
	}
	theirs, err := c.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s, err := msrp.StartSession(ctx, c, ours, msrp.SessionConfig{})
		if err != nil {
			log.Fatal(err)
		}
		peer(s)
		s.Shutdown(ctx)
		<-s.Done()
	}()
	return theirs, done
}

// sendTexts is a peer that sends a few messages and hangs up.
func sendTexts(texts ...string) func(*msrp.MSRPSession) {
	return func(s *msrp.MSRPSession) {
		for _, text := range texts {
			if err := s.Send(context.Background(), "text/plain", []byte(text), msrp.MessageOptions{}); err != nil {
				log.Fatal(err)
			}
		}
	}
}

// Accept one session and print every message until the peer hangs up.
func ExampleMSRPSession_Receive() {
	ctx := context.Background()
	acceptor := msrp.GetAcceptor(nil, msrp.ConnectConfig{})
	local, err := acceptor.Prepare(ctx, msrp.URI{Host: "127.0.0.1"}) // port 0: any free port
	if err != nil {
		log.Fatal(err)
	}
	remote, _ := sipCall(local, false, sendTexts("Hello", "How are you?"))

	s, err := msrp.StartSession(ctx, acceptor, remote, msrp.SessionConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for m, err := s.Receive(ctx); m != nil; m, err = s.Receive(ctx) {
		if err == nil {
			fmt.Printf("%s: %s\n", m.ContentType, m.Data)
		} // else the message was aborted or cut short, and err says how
	}
	// No message: the session has ended. s.Err() says if anything was lost.
	// Output:
	// text/plain: Hello
	// text/plain: How are you?
}

// Connect, then send a text and a file at once, with progress for the file,
// and wait for both to be delivered.
func ExampleMSRPSession_Send() {
	ctx := context.Background()
	connector := msrp.GetConnector(nil, msrp.ConnectConfig{})
	local, err := connector.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
	if err != nil {
		log.Fatal(err)
	}
	remote, _ := sipCall(local, true, func(s *msrp.MSRPSession) { s.Receive(ctx); s.Receive(ctx) })
	s, err := msrp.StartSession(ctx, connector, remote, msrp.SessionConfig{})
	if err != nil {
		log.Fatal(err)
	}

	photo := bytes.NewReader(make([]byte, 256<<10)) // a 256 KiB file; its name goes in SDP (a=file-selector)
	file, err := s.SendMessage(photo, photo.Size(), "image/jpeg", msrp.MessageOptions{
		OnProgress: func(sent, size int64) { fmt.Printf("photo: %d%%\n", 100*sent/size) },
	})
	if err != nil {
		log.Fatal(err)
	}
	err = s.Send(ctx, "text/plain", []byte("Here is the photo"), msrp.MessageOptions{})
	if err := errors.Join(err, file.Wait(ctx)); err != nil {
		log.Fatal(err)
	}
	s.Shutdown(ctx)
	<-s.Done() // the last progress callback has run
	fmt.Println("both delivered")
	// Output:
	// photo: 25%
	// photo: 50%
	// photo: 75%
	// photo: 100%
	// both delivered
}

// A chat backend: one MSRPServer, one port, a session per SIP call, and
// every message echoed to its sender.
func ExampleMSRPServer_echo() {
	ctx := context.Background()
	srv := &msrp.MSRPServer{}
	defer srv.Close()
	echo := func(s *msrp.MSRPSession) {
		defer s.Close()
		for {
			m, err := s.Receive(ctx)
			if errors.Is(err, msrp.ErrSessionClosed) {
				return
			}
			if err == nil {
				s.Send(ctx, m.ContentType, m.Data, msrp.MessageOptions{})
			}
		}
	}
	// For each SIP call the backend answers:
	for _, caller := range []string{"alice", "bob"} {
		acceptor := srv.Acceptor(msrp.ServerAcceptorConfig{})
		local, err := acceptor.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
		if err != nil {
			log.Fatal(err)
		}
		remote, hungUp := sipCall(local, false, func(s *msrp.MSRPSession) {
			s.Send(ctx, "text/plain", []byte("hello from "+caller), msrp.MessageOptions{})
			m, _ := s.Receive(ctx)
			fmt.Printf("%s got back %q\n", caller, m.Data)
		})
		go func() {
			s, err := msrp.StartSession(ctx, acceptor, remote, msrp.SessionConfig{})
			if err == nil {
				echo(s)
			}
		}()
		<-hungUp
	}
	// Output:
	// alice got back "hello from alice"
	// bob got back "hello from bob"
}

// The msrplib way, for code ported from Python: Complete gives the bound
// transport, and the application reads chunks and answers them itself.
func ExampleMSRPTransport_ReadChunk() {
	ctx := context.Background()
	acceptor := msrp.GetAcceptor(nil, msrp.ConnectConfig{})
	local, err := acceptor.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
	if err != nil {
		log.Fatal(err)
	}
	remote, _ := sipCall(local, false, sendTexts("one", "two"))
	t, err := acceptor.Complete(ctx, remote)
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	for {
		c, err := t.ReadChunk(ctx)
		if err == io.EOF {
			break // the peer hung up
		}
		if err != nil {
			log.Fatal(err)
		}
		if c.Method != msrp.MethodSEND {
			continue
		}
		if err := t.CheckIncomingSENDChunk(c); err != nil {
			t.WriteResponse(ctx, c, 481, "") // or the code in err, a *TransactionError
			continue
		}
		fmt.Printf("chunk %q\n", c.Data)
		if err := t.WriteResponse(ctx, c, 200, ""); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// chunk "one"
	// chunk "two"
}
