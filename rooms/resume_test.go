package rooms

import (
	"context"
	"testing"
	"time"
)

// TestResumeRacingGraceEnd: a resume queued in the room just as the grace
// period ends. The resume runs first; the expiry that follows must see the
// new connection and leave the participant alone (it used to have decided
// before, and removed the participant under the resumed socket).
func TestResumeRacingGraceEnd(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, Config{OnDemand: true, MaxParticipants: 10, ResumeGrace: time.Hour})
	if _, err := reg.Join(ctx, JoinRequest{Room: "race", Name: "stays", Conn: &recorder{}}); err != nil {
		t.Fatal(err) // keeps the room open whatever happens to p
	}
	rec := &recorder{}
	p, err := reg.Join(ctx, JoinRequest{Room: "race", Name: "p", Conn: rec})
	if err != nil {
		t.Fatal(err)
	}
	token := p.ResumeToken()
	p.Disconnected(rec, false)

	// Hold the room's goroutine, queue the resume, then end the grace period.
	held, release := make(chan struct{}), make(chan struct{})
	go func() { _ = p.room.do(ctx, func() { close(held); <-release }) }()
	<-held
	resumed := make(chan error, 1)
	go func() { _, err := reg.Resume(ctx, token, &recorder{}); resumed <- err }()
	waitQueued(t, p.room, 1)
	expired := make(chan struct{})
	go func() { p.graceExpired(); close(expired) }()
	waitQueued(t, p.room, 2)
	close(release)

	if err := <-resumed; err != nil {
		t.Fatalf("resume queued before the expiry was refused: %v", err)
	}
	<-expired
	var left bool
	if err := p.room.do(ctx, func() { left = p.left }); err != nil {
		t.Fatal(err)
	}
	if left {
		t.Fatal("resumed, then removed by the grace period that ended behind it")
	}
}

// waitQueued waits until n operations wait for the room's goroutine.
func waitQueued(t *testing.T, r *room, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(r.ops) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d operations queued, want %d", len(r.ops), n)
		}
		time.Sleep(time.Millisecond)
	}
}
