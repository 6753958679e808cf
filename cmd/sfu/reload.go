package main

import (
	"context"
	"strings"
	"time"

	"github.com/tessera-rtc/tessera/configs"
)

// Reloading the configuration (SIGHUP). What the registry holds changes
// live, between two joins, with no call disturbed: the listed rooms and
// their limits, rooms on demand and their participant limit, the room
// limit, the tokens asked for and the keys verifying them; the log level
// and the shutdown timeout too. Everything else was built into the
// listener, the media engine or the signaling handler when the server
// started, and keeps its running value until a restart: one log line
// names the keys that changed in the file but not in the server.

// liveKey reports whether a configuration key (a path from configs.Changed)
// takes effect on reload.
func liveKey(key string) bool {
	switch key {
	case "log.level", "shutdown_timeout",
		"rooms.on_demand", "rooms.max_participants", "rooms.max_viewers", "rooms.list",
		"auth.keys", "auth.require_token",
		"limits.max_rooms":
		return true
	}
	return false
}

// keepFixed returns next with every key that cannot change live set back to
// its value in cur. It must agree with liveKey (TestKeepFixedAgreesWithLiveKey).
func keepFixed(cur, next configs.Config) configs.Config {
	next.Listen = cur.Listen
	next.TLS = cur.TLS
	next.Log.Format = cur.Log.Format
	next.WebSocket = cur.WebSocket
	next.ICE = cur.ICE
	next.TURN = cur.TURN
	next.Admin = cur.Admin
	next.Cluster = cur.Cluster     // the node's directory and routing are wired at start
	next.Recording = cur.Recording // so is the recorder
	// Resuming reads its grace period without the registry's lock.
	next.Rooms.ResumeGrace = cur.Rooms.ResumeGrace
	maxRooms := next.Limits.MaxRooms
	next.Limits = cur.Limits // the others are the signaling handler's and the media engine's
	next.Limits.MaxRooms = maxRooms
	return next
}

// reload reads the configuration file again and applies what can change
// live. A file that does not load changes nothing. Called from serve's
// goroutine, which owns s.cfg.
func (s *server) reload() {
	if s.configPath == "" {
		s.log.Warn("SIGHUP ignored: the server runs on the embedded configuration (no --config)")
		return
	}
	next, err := configs.Load(s.configPath)
	if err != nil {
		s.log.Error("config reload failed: the running configuration stays", "err", err)
		return
	}
	if s.override != nil {
		s.override(&next)
	}
	var fixed []string
	for _, k := range configs.Changed(s.cfg, next) {
		if !liveKey(k) {
			fixed = append(fixed, k)
		}
	}
	next = keepFixed(s.cfg, next)
	if err := next.Validate(); err != nil {
		s.log.Error("config reload failed: the running configuration stays", "err", err)
		return
	}
	if len(fixed) > 0 {
		s.log.Warn("config reload: keys that cannot change while the server runs keep their running values; restart to apply them",
			"keys", strings.Join(fixed, ","))
	}
	live := configs.Changed(s.cfg, next)
	if len(live) == 0 {
		s.log.Info("config reloaded: nothing to apply", "file", s.configPath)
		return
	}
	rc, err := roomsConfig(next)
	if err != nil {
		s.log.Error("config reload failed: the running configuration stays", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.reg.Reload(ctx, rc); err != nil {
		s.log.Error("config reload failed", "err", err)
		return
	}
	if s.level != nil {
		setLevel(s.level, next.Log.Level)
	}
	s.cfg = next
	s.log.Info("config reloaded", "file", s.configPath, "applied", strings.Join(live, ","))
	s.warnAuth()
}
