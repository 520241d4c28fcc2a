package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-msrp/msrp"
)

// The file transfer is an RFC 5547 push: an INVITE of its own whose one
// m=message section is sendonly and describes the file with
// a=file-selector (name, type, size, SHA-1) and a=file-transfer-id. The
// MSRP session it sets up carries that file and nothing else. Bob hangs up
// once he has the whole file and has checked it.

const (
	fileName = "photo.jpg"
	fileType = "image/jpeg"
)

// pushFile is Alice's side: she offers the file, sends it once the call is
// up, and closes her session when Bob hangs up.
func pushFile(ctx context.Context, alice, bob *endpoint, size int, bobActive bool) error {
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		return err
	}
	section := &msrp.SDPMedia{
		AcceptTypes:     []string{fileType},
		Direction:       msrp.DirectionSendOnly,
		File:            msrp.NewFileSelector(fileName, fileType, data),
		FileTransferID:  msrp.NewSessionID(),
		FileDisposition: "attachment",
		FileDate:        msrp.FileDates{Modification: time.Now().Truncate(time.Second)},
		Setup:           alice.media.offerSetup(bobActive),
	}
	o, err := alice.media.newOffer(ctx, section)
	if err != nil {
		return err
	}
	c, err := alice.invite(ctx, bob, o.sdp())
	if err != nil {
		o.cancel()
		return fmt.Errorf("the file INVITE: %w", err)
	}
	s, neg, err := o.start(ctx, c.answer, msrp.SessionConfig{})
	if err != nil {
		return errors.Join(err, alice.hangUp(ctx, bob, c))
	}
	if err := sendFileOn(ctx, alice, s, neg, data); err != nil {
		s.Close()
		return errors.Join(err, alice.hangUp(ctx, bob, c))
	}
	select {
	case <-c.ended():
	case <-ctx.Done():
		s.Close()
		return fmt.Errorf("bob did not hang up: %w", ctx.Err())
	}
	if err := endSession(ctx, s); err != nil {
		return fmt.Errorf("alice's file session: %w", err)
	}
	alice.log.note(alice.name, "closed", "file session closed cleanly (Err() = nil)")
	return nil
}

// sendFileOn sends the file as one MSRP message, in chunks, and waits for
// all of them to be answered.
func sendFileOn(ctx context.Context, alice *endpoint, s *msrp.MSRPSession, neg *msrp.SDPNegotiation, data []byte) error {
	if !neg.CanSend() || !neg.PeerAccepts(fileType) {
		return errors.New("the answer does not let the file go to bob")
	}
	var chunks atomic.Int32
	allOut := make(chan struct{}) // progress is reported on the session's callback goroutine
	m, err := s.SendMessage(bytes.NewReader(data), int64(len(data)), fileType, msrp.MessageOptions{
		Headers: msrp.Header{{Name: "Content-Disposition", Value: `attachment; filename="` + fileName + `"`}},
		OnProgress: func(sent, total int64) {
			chunks.Add(1)
			if sent == total {
				close(allOut)
			}
		},
	})
	if err != nil {
		return err
	}
	if err := m.Wait(ctx); err != nil {
		return fmt.Errorf("the file was not delivered: %w", err)
	}
	<-allOut
	alice.log.note(alice.name, "sent", fmt.Sprintf("%s delivered: %s in %d chunks, each answered 200", fileName, humanSize(int64(len(data))), chunks.Load()))
	return nil
}

// takeFile is Bob's side of the push: he answers recvonly with max-size at
// the file's size, receives the file, checks its size and SHA-1 against
// the a=file-selector, hangs up and closes his session.
func takeFile(ctx context.Context, bob *endpoint, c *incomingCall, offered *msrp.SDPMedia, bobActive bool) error {
	sel := offered.File
	ours := &msrp.SDPMedia{AcceptTypes: []string{"*"}, MaxSize: sel.Size}
	if bobActive {
		ours.Setup = msrp.SetupActive
	}
	a, err := bob.media.newAnswer(ctx, c.offer, ours)
	if err != nil {
		_ = c.reject(488, "Not Acceptable Here")
		return err
	}
	base := msrp.SessionConfig{}
	base.MaxMessageSize = sel.Size // kept in memory to be hashed: no more than offered
	s, err := a.accept(ctx, c, base)
	if err != nil {
		return err
	}
	m, err := s.Receive(ctx)
	if err != nil {
		s.Close()
		return fmt.Errorf("the file did not arrive: %w", err)
	}
	bob.log.msrp(c.from, bob.name, "file", fmt.Sprintf("%s, %s (%s)", m.ContentType, humanSize(int64(len(m.Data))), m.Headers.Get("Content-Disposition")))
	switch {
	case baseType(m.ContentType) != baseType(sel.Type):
		err = fmt.Errorf("the file came as %s, offered as %s", m.ContentType, sel.Type)
	case int64(len(m.Data)) != sel.Size:
		err = fmt.Errorf("the file has %d bytes, offered as %d", len(m.Data), sel.Size)
	case !sel.Matches(m.Data):
		err = fmt.Errorf("the file's SHA-1 is not the a=file-selector's %s", sel.Hash)
	}
	if err != nil {
		s.Close()
		return err
	}
	bob.log.note(bob.name, "file ok", fmt.Sprintf("%s: %d bytes and %s, as the a=file-selector says", sel.Name, sel.Size, sel.Hash))
	if err := c.hangUp(ctx); err != nil {
		s.Close()
		return err
	}
	if err := endSession(ctx, s); err != nil {
		return fmt.Errorf("bob's file session: %w", err)
	}
	bob.log.note(bob.name, "closed", "file session closed cleanly (Err() = nil)")
	return nil
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
