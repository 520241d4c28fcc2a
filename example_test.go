package msrp_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"strings"

	"github.com/go-msrp/msrp"
)

func ExampleParseURI() {
	u, err := msrp.ParseURI("msrps://alice@relay.example.com:2856/hjdhfsesdf;tcp")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(u.Scheme(), u.Host, u.Port, u.SessionID)
	fmt.Println(u.HostPort())

	other, _ := msrp.ParseURI("msrps://RELAY.example.com:2856/hjdhfsesdf;TCP")
	fmt.Println(u.Equal(other)) // RFC 4975 §6.1: host and transport ignore case
	// Output:
	// msrps relay.example.com 2856 hjdhfsesdf
	// relay.example.com:2856
	// true
}

func ExampleParser() {
	stream := []byte("MSRP a786hjs2 SEND\r\n" +
		"To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n" +
		"From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n" +
		"Message-ID: 87652491\r\n" +
		"Byte-Range: 1-5/5\r\n" +
		"Content-Type: text/plain\r\n" +
		"\r\n" +
		"Hello\r\n" +
		"-------a786hjs2$\r\n")

	var p msrp.Parser
	// Bytes may arrive split anywhere; here, seven at a time.
	for len(stream) > 0 {
		piece := stream[:min(7, len(stream))]
		stream = stream[len(piece):]
		for len(piece) > 0 {
			chunk, n, err := p.Feed(piece)
			piece = piece[n:]
			if err != nil {
				log.Fatal(err)
			}
			if chunk != nil {
				r, _ := chunk.ByteRange()
				fmt.Printf("%s: %q, bytes %d-%d of %d\n", chunk, chunk.Data, r.Start, r.End, r.Total)
			}
		}
	}
	// Output:
	// MSRP a786hjs2 SEND: "Hello", bytes 1-5 of 5
}

func ExampleChunk_Encode() {
	to, _ := msrp.ParsePath("msrp://bob.example.com:8888/9di4eae923wzd;tcp")
	from, _ := msrp.ParsePath("msrp://alice.example.com:7777/iau39soe2843z;tcp")
	c := msrp.NewRequest(msrp.MethodSEND, to, from)
	c.TransactionID = "d93kswow" // normally random
	c.Headers.Set(msrp.HeaderMessageID, "12339sdqwer")
	c.Headers.Set(msrp.HeaderByteRange, msrp.ByteRange{Start: 1, End: 2, Total: 2}.String())
	c.Headers.Set(msrp.HeaderContentType, "text/plain")
	c.Data = []byte("Hi")
	wire, err := c.Encode(nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(strings.ReplaceAll(string(wire), "\r\n", "\n")) // lines end in CRLF on the wire
	// Output:
	// MSRP d93kswow SEND
	// To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp
	// From-Path: msrp://alice.example.com:7777/iau39soe2843z;tcp
	// Message-ID: 12339sdqwer
	// Byte-Range: 1-2/2
	// Content-Type: text/plain
	//
	// Hi
	// -------d93kswow$
}

// A ConnectorDirect (the active side) binds to an AcceptorDirect (the passive
// side) on loopback. In a real application the two paths travel in SDP
// a=path attributes over SIP.
func ExampleConnectorDirect() {
	ctx := context.Background()

	acceptor := &msrp.AcceptorDirect{}
	defer acceptor.Cleanup()
	answerPath, err := acceptor.Prepare(ctx, msrp.URI{Host: "127.0.0.1"}) // port 0: any free port
	if err != nil {
		log.Fatal(err)
	}

	connector := &msrp.ConnectorDirect{}
	defer connector.Cleanup()
	offerPath, err := connector.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
	if err != nil {
		log.Fatal(err)
	}

	// ... offerPath goes to the peer in the SDP offer, answerPath comes back in the answer ...

	accepted := make(chan *msrp.MSRPTransport, 1)
	go func() {
		t, err := acceptor.Complete(ctx, offerPath)
		if err != nil {
			log.Fatal(err)
		}
		accepted <- t
	}()
	active, err := connector.Complete(ctx, answerPath)
	if err != nil {
		log.Fatal(err)
	}
	defer active.Close()
	passive := <-accepted
	defer passive.Close()

	send := active.MakeSendRequest("", []byte("Hello over MSRP"), 1, 0)
	send.Headers.Set(msrp.HeaderContentType, "text/plain")
	if err := active.WriteChunk(ctx, send); err != nil {
		log.Fatal(err)
	}
	got, err := passive.ReadChunk(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if err := passive.CheckIncomingSENDChunk(got); err != nil {
		log.Fatal(err) // a *TransactionError: 400 or 481
	}
	fmt.Printf("received %q\n", got.Data)
	if err := passive.WriteResponse(ctx, got, 200, ""); err != nil {
		log.Fatal(err)
	}
	resp, err := active.ReadChunk(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Code, resp.Comment, resp.TransactionID == send.TransactionID)
	// Output:
	// received "Hello over MSRP"
	// 200 OK true
}

func ExampleTransactionError() {
	err := fmt.Errorf("binding: %w", &msrp.TransactionError{Code: 481})
	var te *msrp.TransactionError
	if errors.As(err, &te) {
		fmt.Println(te.Code, te)
	}
	fmt.Println(errors.Is(msrp.ErrBindSessionTimeout, msrp.ErrTimeout))
	fmt.Println(errors.Is(msrp.ErrBindSessionTimeout, context.DeadlineExceeded))
	// Output:
	// 481 msrp: 481 No Such Session
	// true
	// true
}

// One MSRPServer serves many sessions on one port. Each session is an
// acceptor of the server's: prepared (its path goes in that session's SDP)
// and completed with the peer's path; the peer may connect before or after
// Complete.
func ExampleMSRPServer() {
	ctx := context.Background()
	srv := &msrp.MSRPServer{}
	defer srv.Close()

	for _, text := range []string{"first session", "second session"} {
		session := srv.Acceptor(msrp.ServerAcceptorConfig{})
		defer session.Cleanup()
		localPath, err := session.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
		if err != nil {
			log.Fatal(err)
		}

		// The peer, here a ConnectorDirect in the same program.
		peer := &msrp.ConnectorDirect{}
		peerPath, err := peer.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			t, err := peer.Complete(ctx, localPath)
			if err != nil {
				log.Fatal(err)
			}
			send := t.MakeSendRequest("", []byte(text), 1, 0)
			send.Headers.Set(msrp.HeaderContentType, "text/plain")
			t.WriteChunk(ctx, send)
		}()

		t, err := session.Complete(ctx, peerPath)
		if err != nil {
			log.Fatal(err)
		}
		c, err := t.ReadChunk(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("port shared: %v, received %q\n", localPath[0].Port == srv.Addrs()[0].(*net.TCPAddr).Port, c.Data)
		t.Close()
	}
	// Output:
	// port shared: true, received "first session"
	// port shared: true, received "second session"
}

// Relay settings as msrplib takes them. With no Host, Prepare finds the
// relay by DNS SRV (_msrps._tcp.example.com), and falls back to
// example.com:2855. The password never appears when the settings are
// printed or logged.
func ExampleMSRPRelaySettings() {
	relay := &msrp.MSRPRelaySettings{Domain: "example.com", Username: "alice", Password: "s3cret"}
	fmt.Println(relay)
	fmt.Printf("%#v\n", relay)
	fmt.Println("AUTH goes to", relay.URI())

	c := msrp.GetConnector(relay, msrp.ConnectConfig{})
	fmt.Printf("%T\n", c)
	// Output:
	// MSRPRelay msrps://alice@example.com;tcp
	// MSRPRelay msrps://alice@example.com;tcp
	// AUTH goes to msrps://example.com;tcp
	// *msrp.ConnectorRelay
}

// A whole message, sent from an io.Reader in chunks and put back together
// at the far end.
func ExampleMSRPSession_SendMessage() {
	ctx := context.Background()
	acceptor := &msrp.AcceptorDirect{}
	defer acceptor.Cleanup()
	answer, _ := acceptor.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
	connector := &msrp.ConnectorDirect{}
	offer, _ := connector.Prepare(ctx, msrp.URI{Host: "127.0.0.1"})
	accepted := make(chan *msrp.MSRPTransport, 1)
	go func() {
		t, err := acceptor.Complete(ctx, offer)
		if err != nil {
			log.Fatal(err)
		}
		accepted <- t
	}()
	t, err := connector.Complete(ctx, answer)
	if err != nil {
		log.Fatal(err)
	}

	received := make(chan *msrp.IncomingMessage, 1)
	var chunks int // Bob's callbacks run one at a time, in order: no lock needed
	bob := msrp.NewMSRPSession(<-accepted, msrp.SessionConfig{
		OnIncoming:    func(_ *msrp.MSRPSession, c *msrp.Chunk) { chunks++ },
		MessageConfig: msrp.MessageConfig{OnMessage: func(_ *msrp.MSRPSession, m *msrp.IncomingMessage) { received <- m }},
	})
	defer bob.Close()
	alice := msrp.NewMSRPSession(t, msrp.SessionConfig{
		MessageConfig: msrp.MessageConfig{ChunkSize: 1000}, // small, to show the chunking
	})
	defer alice.Close()

	text := strings.Repeat("All work and no play. ", 200) // 4,400 bytes
	m, err := alice.SendMessage(strings.NewReader(text), int64(len(text)), "text/plain", msrp.MessageOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Wait(ctx); err != nil { // every chunk answered 200
		log.Fatal(err)
	}
	got := <-received // OnMessage came after OnIncoming for each chunk
	fmt.Println(chunks, "chunks sent")
	fmt.Println(got.ContentType, got.Size, got.Err, string(got.Data) == text)
	// Output:
	// 5 chunks sent
	// text/plain 4400 <nil> true
}
