// Package msrp implements MSRP, the Message Session Relay Protocol (RFC
// 4975), and its relay extension (RFC 4976): the protocol SIP clients use to
// carry chat messages and files. It is a port of AG Projects' Python
// msrplib, with the same names where msrplib has them.
//
// # The short path
//
// A session is set up by SIP: each side puts its MSRP path in SDP
// (a=path), and the side that sent the offer connects to the other. With
// the peer's path in hand, one call starts the session; Send and Receive
// then carry whole messages of any size:
//
//	conn := msrp.GetAcceptor(nil, msrp.ConnectConfig{}) // GetConnector on the side that sent the offer
//	local, err := conn.Prepare(ctx, msrp.URI{Host: "192.0.2.10"})
//	// SDP: a=path:<msrp.FormatPath(local)>; msrp.ParsePath reads the peer's a=path.
//	s, err := msrp.StartSession(ctx, conn, remote, msrp.SessionConfig{})
//	defer s.Close()
//	err = s.Send(ctx, "text/plain", []byte("Hello"), msrp.MessageOptions{})
//	m, err := s.Receive(ctx) // the next message, in order; the peer waits while nobody reads
//
// Many sessions share one port with an MSRPServer (its Acceptor is the
// connector of each); relays (RFC 4976) come with MSRPRelaySettings given
// to GetConnector or GetAcceptor. REPORTs reach SessionConfig.OnReport;
// files go out with SendMessage, which reads an io.Reader and reports
// progress, and come in through MessageWriter, which streams them to an
// io.Writer. Shutdown(ctx) ends a session gracefully, Close at once.
//
// Browsers speak MSRP over WebSocket (RFC 7977): the ws subpackage has a
// Handler that hands their connections to an MSRPServer, and a Dialer for
// ConnectConfig.DialMessage that reaches WebSocket relays and servers.
// Under the transport such a link is a MessageConn, one chunk per message.
//
// # How a session is set up
//
// MSRP runs over a TCP or TLS connection that a SIP offer/answer sets up.
// Each side describes itself in SDP with an a=path attribute: one or more
// msrp:// or msrps:// URIs, the last being its own (the ones before are
// relays). The lifecycle, on both sides:
//
//  1. Prepare: a connector (ConnectorDirect, AcceptorDirect, ConnectorRelay,
//     AcceptorRelay, or an MSRPServer for many sessions on one port)
//     returns the full local path; FormatPath turns it into the a=path value.
//  2. The paths travel over SIP; ParsePath reads the peer's a=path.
//  3. Complete: the active side connects and binds the session with an
//     empty SEND, the passive side waits for it; both get a bound
//     MSRPTransport.
//  4. NewMSRPSession runs the session (StartSession does 3 and 4 in one
//     call): Send and Receive, or SendChunk, DeliverChunk, SendMessage and
//     callbacks for chunks and messages.
//  5. Shutdown(ctx) ends it gracefully, Close at once; Cleanup releases a
//     connector whose Complete was never called or failed.
//
// # Layers
//
// URI, Chunk and the error types are plain values. Parser turns bytes into
// chunks without doing I/O. MSRPTransport reads and writes chunks on one
// connection and checks paths. The connectors and MSRPServer obtain bound
// transports. MSRPSession runs the protocol on one: transactions with
// timeouts, responses, REPORTs, keepalive, chunking and reassembly.
//
// # Conventions
//
// Configuration is plain struct fields whose zero values work, with
// msrplib's defaults (30 s timeouts, 60 s keepalive, TLS certificate
// verification on). Every call that can block takes a context.Context
// first. Timeouts match ErrTimeout and context.DeadlineExceeded with
// errors.Is; MSRP status codes come as *TransactionError; bad input as
// *ChunkParseError or *HeaderError. Nothing is logged unless a Logger with
// an slog.Logger is given, and credentials never are.
//
// # Callbacks and lifecycle
//
// A session's callbacks run one at a time, in order, on a goroutine of the
// session's own, outside every lock, and receive the session: they may call
// any of its methods, Close and Shutdown included. Every outcome (a
// response callback, DeliverChunk, OutgoingMessage.Wait, OnMessage) comes
// exactly once, however the session ends. Close is safe from anywhere and
// returns once the connection is closed; Done is closed once the last
// callback has returned.
package msrp
