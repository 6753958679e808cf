package rooms

import (
	"context"
	"fmt"
	"slices"
)

// Reload applies a new policy to the running registry without disturbing
// the participants: rooms newly listed are created; rooms still present
// take their new participant and viewer limits (someone already in a room over its new
// limit stays; newcomers wait for room); the token settings, keys and
// limits apply to the next joins. A room taken off the list keeps running
// until its last participant leaves: it takes no newcomers unless rooms are
// created on demand, in which case it becomes such a room. An empty one
// goes at once. ResumeGrace, Placement and ResumePrefix keep the values
// NewLocal was given: they are read without l.mu.
func (l *Local) Reload(ctx context.Context, cfg Config) error {
	if cfg.MaxParticipants <= 0 {
		return fmt.Errorf("rooms: MaxParticipants must be positive")
	}
	seen := map[string]bool{}
	for _, rc := range cfg.Listed {
		if err := ValidName(rc.Name); err != nil {
			return fmt.Errorf("rooms: listed room: %w", err)
		}
		if seen[rc.Name] {
			return fmt.Errorf("rooms: room %q listed twice", rc.Name)
		}
		seen[rc.Name] = true
	}
	l.reloadMu.Lock()
	defer l.reloadMu.Unlock()

	type change struct {
		r      *room
		lim    roomLimits
		listed bool
	}
	var changes []change
	l.mu.Lock()
	if l.shutdown {
		l.mu.Unlock()
		return ErrShutdown
	}
	l.setConfig(cfg)
	for name, r := range l.rooms {
		rc, listed := l.listed(name)
		changes = append(changes, change{r: r, lim: l.limit(rc), listed: listed})
	}
	var added []string
	for _, rc := range cfg.Listed {
		if _, ok := l.rooms[rc.Name]; !ok {
			l.rooms[rc.Name] = newRoom(l, rc.Name, l.limit(rc), true)
			added = append(added, rc.Name)
		}
	}
	l.mu.Unlock()

	// Each room's own goroutine takes its changes; l.mu is not held, since
	// a room that closes takes it to leave the map.
	var unlisted []string
	for _, c := range changes {
		r := c.r
		err := r.do(ctx, func() {
			r.lim = c.lim
			if r.listed && !c.listed {
				unlisted = append(unlisted, r.name)
			}
			r.listed = c.listed
			if !r.listed && len(r.parts) == 0 && !r.closed {
				r.closed = true // run ends after this op
				r.reg.dropRoom(r)
			}
		})
		if err != nil && ctx.Err() != nil {
			return err
		}
	}
	slices.Sort(added)
	slices.Sort(unlisted)
	l.log.Info("rooms reloaded", "listed", len(cfg.Listed), "added", added, "unlisted", unlisted,
		"on_demand", cfg.OnDemand, "tokens", cfg.Auth != nil)
	return nil
}

// setConfig replaces the policy, but ResumeGrace; l.mu must be held.
func (l *Local) setConfig(cfg Config) {
	c := &l.cfg
	c.OnDemand = cfg.OnDemand
	c.MaxParticipants = cfg.MaxParticipants
	c.MaxViewers = cfg.MaxViewers
	c.MaxRooms = cfg.MaxRooms
	c.RequireToken = cfg.RequireToken
	c.Auth = cfg.Auth
	c.Listed = slices.Clone(cfg.Listed)
}

// listed returns the listed room's configuration; l.mu must be held.
func (l *Local) listed(name string) (RoomConfig, bool) {
	for _, rc := range l.cfg.Listed {
		if rc.Name == name {
			return rc, true
		}
	}
	return RoomConfig{}, false
}

// isListed reports whether the room is listed; l.mu must be held.
func (l *Local) isListed(name string) bool {
	_, ok := l.listed(name)
	return ok
}
