package ws_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"

	"github.com/go-msrp/msrp"
	"github.com/go-msrp/msrp/ws"
)

// A Go chat backend serves MSRP over WebSocket at /msrp, next to its own
// pages; here a Go client stands in for the browser.
func ExampleHandler() {
	ctx := context.Background()
	srv := &msrp.MSRPServer{}
	defer srv.Close()
	mux := http.NewServeMux()
	mux.Handle("/msrp", &ws.Handler{Server: srv})
	web := httptest.NewServer(mux)
	defer web.Close()
	host, port, _ := net.SplitHostPort(web.Listener.Addr().String())
	p, _ := strconv.Atoi(port)

	// The backend's side of one session: a ws URI on its HTTP server.
	a := srv.Acceptor(msrp.ServerAcceptorConfig{})
	backendPath, err := a.Prepare(ctx, msrp.URI{Host: host, Port: p, Transport: "ws"})
	if err != nil {
		log.Fatal(err)
	}
	// The client's side, which SIP would have set up.
	c := &msrp.ConnectorDirect{ConnectConfig: msrp.ConnectConfig{DialMessage: (&ws.Dialer{Path: "/msrp"}).DialMessage}}
	clientPath, err := c.Prepare(ctx, msrp.WebSocketClientURI(false))
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		s, err := msrp.StartSession(ctx, c, backendPath, msrp.SessionConfig{})
		if err != nil {
			log.Fatal(err)
		}
		s.Send(ctx, "text/plain", []byte("hello over WebSocket"), msrp.MessageOptions{})
		s.Shutdown(ctx)
	}()

	s, err := msrp.StartSession(ctx, a, clientPath, msrp.SessionConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	m, err := s.Receive(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s\n", m.ContentType, m.Data)
	// Output: text/plain: hello over WebSocket
}
