// Command loopback runs two MSRP endpoints in one process and has them talk
// over a real loopback connection: an AcceptorDirect (the side that answered
// the SIP offer and waits) and a ConnectorDirect (the side that connects).
// They exchange their a=path values as SIP/SDP would carry them, bind the
// session, send text messages both ways, and send a larger message in
// several chunks whose SHA-256 is checked at the far end.
//
//	go run ./examples/loopback            # TCP over 127.0.0.1
//	go run ./examples/loopback -tls       # msrps, certificates checked by fingerprint
//	go run ./examples/loopback -ipv6 -log # over [::1], with the traffic log on stderr
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"hash"
	"log/slog"
	"math/big"
	"os"
	"time"

	"github.com/go-msrp/msrp"
)

func main() {
	useTLS := flag.Bool("tls", false, "use msrps (TLS) with self-signed certificates checked by SDP-style fingerprints")
	ipv6 := flag.Bool("ipv6", false, "use [::1] instead of 127.0.0.1")
	logTraffic := flag.Bool("log", false, "write the MSRP traffic log to stderr")
	size := flag.Int("size", 256<<10, "size in bytes of the larger message")
	flag.Parse()
	if flag.NArg() > 0 || *size < 0 {
		fmt.Fprintln(os.Stderr, "usage: loopback [-tls] [-ipv6] [-log] [-size N]")
		os.Exit(2)
	}
	if err := run(*useTLS, *ipv6, *logTraffic, *size); err != nil {
		fmt.Fprintln(os.Stderr, "loopback:", err)
		os.Exit(1)
	}
}

func run(useTLS, ipv6, logTraffic bool, size int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	host := "127.0.0.1"
	if ipv6 {
		host = "::1"
	}

	var accCfg, conCfg msrp.ConnectConfig
	if logTraffic {
		handler := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
		accCfg.Logger = &msrp.Logger{Slog: slog.New(handler), Prefix: "[answerer] ", LogTraffic: true}
		conCfg.Logger = &msrp.Logger{Slog: slog.New(handler), Prefix: "[offerer] ", LogTraffic: true}
	}
	if useTLS {
		if err := setUpTLS(&accCfg, &conCfg, host); err != nil {
			return err
		}
	}

	// 1. Each side prepares and gets the path to put in its SDP a=path.
	acceptor := &msrp.AcceptorDirect{ConnectConfig: accCfg}
	defer acceptor.Cleanup()
	answerPath, err := acceptor.Prepare(ctx, msrp.URI{Host: host, UseTLS: useTLS})
	if err != nil {
		return err
	}
	connector := &msrp.ConnectorDirect{ConnectConfig: conCfg}
	defer connector.Cleanup()
	offerPath, err := connector.Prepare(ctx, msrp.URI{Host: host, UseTLS: useTLS})
	if err != nil {
		return err
	}
	fmt.Printf("offerer  a=path:%s\n", msrp.FormatPath(offerPath))
	fmt.Printf("answerer a=path:%s (listening)\n", msrp.FormatPath(answerPath))

	// 2. After the SDP exchange, each side completes with the other's path.
	type result struct {
		t   *msrp.MSRPTransport
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		t, err := acceptor.Complete(ctx, offerPath)
		accepted <- result{t, err}
	}()
	offerer, err := connector.Complete(ctx, answerPath)
	if err != nil {
		return fmt.Errorf("offerer could not connect: %w", err)
	}
	defer offerer.Close()
	r := <-accepted
	if r.err != nil {
		return fmt.Errorf("answerer saw no valid connection: %w", r.err)
	}
	answerer := r.t
	defer answerer.Close()
	fmt.Printf("session bound: %s -> %s\n", offerer.LocalAddr(), answerer.LocalAddr())

	// 3. Text messages both ways, each answered with 200 OK.
	for i, m := range []struct {
		from, to *msrp.MSRPTransport
		who      string
		text     string
	}{
		{offerer, answerer, "offerer", "Hi, are you there?"},
		{answerer, offerer, "answerer", "Yes, loud and clear."},
		{offerer, answerer, "offerer", "Sending you something bigger."},
	} {
		if err := sendText(ctx, m.from, m.to, m.text); err != nil {
			return fmt.Errorf("message %d: %w", i+1, err)
		}
		fmt.Printf("%-8s says %q: delivered, 200 OK\n", m.who, m.text)
	}

	// 4. A larger message in 64 KiB chunks, reassembled and hashed at the far end.
	return sendLarge(ctx, offerer, answerer, size)
}

func sendText(ctx context.Context, from, to *msrp.MSRPTransport, text string) error {
	send := from.MakeSendRequest("", []byte(text), 1, 0)
	send.Headers.Set(msrp.HeaderContentType, "text/plain")
	if err := from.WriteChunk(ctx, send); err != nil {
		return err
	}
	got, err := to.ReadChunk(ctx)
	if err != nil {
		return err
	}
	if err := to.CheckIncomingSENDChunk(got); err != nil {
		return err
	}
	if string(got.Data) != text {
		return fmt.Errorf("received %q, sent %q", got.Data, text)
	}
	if err := to.WriteResponse(ctx, got, 200, ""); err != nil {
		return err
	}
	return expectOK(ctx, from, send)
}

func expectOK(ctx context.Context, t *msrp.MSRPTransport, req *msrp.Chunk) error {
	resp, err := t.ReadChunk(ctx)
	if err != nil {
		return err
	}
	if resp.TransactionID != req.TransactionID || resp.Code != 200 {
		return fmt.Errorf("unexpected response %s", resp)
	}
	return nil
}

func sendLarge(ctx context.Context, from, to *msrp.MSRPTransport, size int) error {
	body := make([]byte, size)
	if _, err := rand.Read(body); err != nil {
		return err
	}
	const chunkSize = 64 << 10
	messageID := msrp.NewMessageID()
	sent := sha256.Sum256(body)
	received := sha256.New()
	next := int64(1)
	chunks := 0
	for start := 0; start < len(body) || start == 0; start += chunkSize {
		piece := body[start:min(start+chunkSize, len(body))]
		send := from.MakeSendRequest(messageID, piece, int64(start+1), int64(len(body)))
		send.Headers.Set(msrp.HeaderContentType, "application/octet-stream")
		if err := from.WriteChunk(ctx, send); err != nil {
			return err
		}
		if err := receivePiece(ctx, to, received, &next); err != nil {
			return err
		}
		if err := expectOK(ctx, from, send); err != nil {
			return err
		}
		chunks++
		fmt.Printf("  chunk %d: bytes %d-%d of %d delivered, 200 OK\n", chunks, start+1, start+len(piece), len(body))
		if len(body) == 0 {
			break
		}
	}
	if got := received.Sum(nil); string(got) != string(sent[:]) {
		return errors.New("the larger message arrived corrupted: SHA-256 differs")
	}
	fmt.Printf("larger message: %d bytes in %d chunks, SHA-256 %x matches at the far end\n", len(body), chunks, sent[:8])
	return nil
}

// receivePiece reads one chunk of the larger message, checks that its
// Byte-Range starts where the previous chunk ended, adds it to the hash,
// answers it and hands its memory back. *next is the 1-based position of
// the byte expected next.
func receivePiece(ctx context.Context, t *msrp.MSRPTransport, h hash.Hash, next *int64) error {
	c, err := t.ReadChunk(ctx)
	if err != nil {
		return err
	}
	if err := t.CheckIncomingSENDChunk(c); err != nil {
		return err
	}
	r, err := c.ByteRange()
	if err != nil {
		return err
	}
	if r.Start != *next {
		return fmt.Errorf("chunk starts at byte %d, expected %d", r.Start, *next)
	}
	*next += int64(len(c.Data))
	h.Write(c.Data)
	if err := t.WriteResponse(ctx, c, 200, ""); err != nil {
		return err
	}
	t.ReleaseChunk(c)
	return nil
}

// setUpTLS gives each side a fresh self-signed certificate and makes each
// check the other's against its fingerprint, as a=fingerprint in SDP would
// carry it (RFC 4975 §14.4).
func setUpTLS(accCfg, conCfg *msrp.ConnectConfig, host string) error {
	accCert, accFP, err := selfSigned(host)
	if err != nil {
		return err
	}
	conCert, conFP, err := selfSigned("offerer")
	if err != nil {
		return err
	}
	verifyAnswerer, err := msrp.VerifyFingerprint(accFP)
	if err != nil {
		return err
	}
	verifyOfferer, err := msrp.VerifyFingerprint(conFP)
	if err != nil {
		return err
	}
	fmt.Printf("offerer  a=fingerprint:%s\nanswerer a=fingerprint:%s\n", conFP, accFP)
	accCfg.TLSConfig = &tls.Config{
		Certificates:       []tls.Certificate{accCert},
		ClientAuth:         tls.RequireAnyClientCert,
		InsecureSkipVerify: true, // no CA vouches for either: the fingerprint does
		VerifyConnection:   verifyOfferer,
	}
	conCfg.TLSConfig = &tls.Config{
		Certificates:       []tls.Certificate{conCert},
		InsecureSkipVerify: true,
		VerifyConnection:   verifyAnswerer,
	}
	return nil
}

func selfSigned(name string) (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	fp, err := msrp.CertificateFingerprint(der, "sha-256")
	if err != nil {
		return tls.Certificate{}, "", err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, fp, nil
}
