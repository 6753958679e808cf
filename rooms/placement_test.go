package rooms

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tessera-rtc/tessera/internal/testutil"
)

// placement is a cluster directory that hosts some rooms elsewhere.
type placement struct {
	mu        sync.Mutex
	elsewhere map[string]bool
	down      bool
	claimed   []string
}

func (p *placement) Claim(_ context.Context, room string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.down:
		return fmt.Errorf("%w: redis", ErrUnavailable)
	case p.elsewhere[room]:
		return fmt.Errorf("%w: node b", ErrMoved)
	}
	p.claimed = append(p.claimed, room)
	return nil
}

// TestPlacementClaims: in a cluster a join is admitted only into a room
// this node hosts; tokens say the node; a room moved away, or a node
// draining, sends its participants off with ErrMoved.
func TestPlacementClaims(t *testing.T) {
	pl := &placement{elsewhere: map[string]bool{"theirs": true}}
	reg := newRegistry(t, Config{OnDemand: true, MaxParticipants: 10, ResumeGrace: time.Minute, Placement: pl, ResumePrefix: "node-a~"})
	ctx := context.Background()

	if _, err := reg.Join(ctx, JoinRequest{Room: "theirs", Name: "x", Conn: &recorder{}}); !errors.Is(err, ErrMoved) {
		t.Errorf("join into a room hosted elsewhere: %v, want ErrMoved", err)
	}
	pl.mu.Lock()
	pl.down = true
	pl.mu.Unlock()
	if _, err := reg.Join(ctx, JoinRequest{Room: "ours", Name: "x", Conn: &recorder{}}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("join without the directory: %v, want ErrUnavailable", err)
	}
	pl.mu.Lock()
	pl.down = false
	pl.mu.Unlock()

	a, recA := join(t, reg, "ours", "Ann")
	_, recB := join(t, reg, "ours", "Bob")
	if !strings.HasPrefix(a.ResumeToken(), "node-a~") {
		t.Errorf("resume token %q does not name the node", a.ResumeToken())
	}
	if got := reg.Hosted(ctx); !slices.Equal(got, []string{"ours"}) {
		t.Errorf("hosted %v, want [ours]", got)
	}
	if n, err := reg.Evict(ctx, "ours"); err != nil || n != 2 {
		t.Fatalf("evicted %d, %v", n, err)
	}
	for _, rec := range []*recorder{recA, recB} {
		testutil.Eventually(t, 5*time.Second, "the participant is told the room moved", func() bool {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			return errors.Is(rec.closed, ErrMoved)
		})
	}
	if got := reg.Hosted(ctx); len(got) != 0 {
		t.Errorf("hosted %v after the eviction", got)
	}

	_, recC := join(t, reg, "again", "Cy")
	if err := reg.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	recC.mu.Lock()
	closed := recC.closed
	recC.mu.Unlock()
	if !errors.Is(closed, ErrMoved) {
		t.Errorf("a draining node closed its participant with %v, want ErrMoved", closed)
	}
}
