package rooms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/sfu/record"
)

// Registry places participants into rooms; Local keeps them in this
// process. A Participant lives where its socket and its PeerConnection are:
// Join and Resume return it, and the signaling layer drives it directly
// (and its Peer). What several nodes will share is the rest, the rooms'
// membership, tracks and events, which this interface is the seam for.
type Registry interface {
	// Join admits a participant into a room, creating the room when policy
	// allows. The participant's first event on req.Conn is Joined.
	Join(ctx context.Context, req JoinRequest) (*Participant, error)
	// Resume hands a participant whose connection dropped to a new one,
	// given the participant's resume token. Its first event is Resumed.
	Resume(ctx context.Context, token string, c Conn) (*Participant, error)
	// Rooms describes the rooms and their participants.
	Rooms(ctx context.Context) []RoomInfo
	// Shutdown refuses new joins, tells every participant and removes them.
	Shutdown(ctx context.Context) error
}

// Conn is a participant's connection to its client, implemented by the
// signaling layer. Send must not block: events are queued in order. Close
// ends the connection from the server's side, telling the client why.
type Conn interface {
	Send(Event)
	Close(reason error)
}

// A Prober is a Conn that can tell whether its client still answers (a
// WebSocket ping does). Resume does not take a participant over from a
// connection that answers.
type Prober interface {
	Alive(ctx context.Context) bool
}

// PeerFactory creates the media side of a participant (*sfu.Engine).
type PeerFactory interface {
	NewPeer(sfu.PeerConfig) (*sfu.Peer, error)
}

// JoinRequest is what a client asks for when it joins.
type JoinRequest struct {
	Room          string
	Name          string
	AutoSubscribe bool
	Conn          Conn
	// Token is the client's join token (rooms/auth.go); empty: none.
	Token string
	// Codecs lists what the client decodes; nil: anything the server
	// forwards. Tracks are sent in a codec their subscribers decode where
	// the publisher can send one (sfu.Peer.SetAudience).
	Codecs sfu.Codecs
	// Via is how the client negotiates: "" for the signaling socket,
	// ViaWHIP for an HTTP publisher that negotiates once, ViaWHEP for an
	// HTTP viewer.
	Via string
	// Watch is, for a viewer, the id of the participant it watches; empty,
	// it follows the room's speaker.
	Watch string

	access access // what the token (or its absence) allows; set by Join
}

// ViaWHIP marks a WHIP publisher (RFC 9725): it needs the publish
// permission, is never sent anything, and its session is never
// renegotiated.
const ViaWHIP = "whip"

// Config holds the room policy.
type Config struct {
	// OnDemand creates unlisted rooms on their first join.
	OnDemand bool
	// MaxParticipants limits on-demand rooms and listed rooms without a limit.
	MaxParticipants int
	// MaxViewers limits the viewers (ViaWHEP) of on-demand rooms and of
	// listed rooms without a limit, counted apart from the participants
	// (0: defaultMaxViewers).
	MaxViewers int
	// MaxRooms limits how many rooms exist at once (0: no limit).
	MaxRooms int
	// ResumeGrace is how long a participant whose socket dropped (without a
	// close frame) is kept for a new socket to resume it; 0 disables resume.
	ResumeGrace time.Duration
	// Listed rooms always exist.
	Listed []RoomConfig
	// Auth verifies join tokens; nil accepts none (a client presenting one
	// is refused).
	Auth *Auth
	// RequireToken makes rooms that are not listed require a token.
	RequireToken bool
	// Placement, in a cluster, makes this node the host of a room before
	// anyone joins it here; nil: the node runs alone and hosts every room.
	Placement Placement
	// ResumePrefix starts every resume token (in a cluster, the node's id
	// and "~", so that any node can tell where a participant lives).
	ResumePrefix string
	// Recorder writes recordings (rooms/recording.go); nil: rooms cannot
	// be recorded. Reload keeps the registry's first one.
	Recorder *record.Recorder
}

// Placement claims rooms for this node in a cluster's directory.
type Placement interface {
	// Claim makes this node the room's host, or confirms it is. It fails
	// with ErrMoved when another node hosts the room, and ErrUnavailable
	// when the directory cannot be reached.
	Claim(ctx context.Context, room string) error
}

// RoomConfig is one listed room.
type RoomConfig struct {
	Name            string
	MaxParticipants int  // 0: Config.MaxParticipants
	MaxViewers      int  // 0: Config.MaxViewers
	RequireToken    bool // joining needs a token for this room
	Record          bool // what is published is recorded (Config.Recorder)
}

// RoomInfo describes a room.
type RoomInfo struct {
	Name            string
	MaxParticipants int
	MaxViewers      int
	Participants    []ParticipantInfo
	// Node is the cluster node hosting the room; empty when alone.
	Node string
	// Recording: what is published in the room is being recorded.
	Recording bool
}

// Local is the in-process Registry.
type Local struct {
	cfg   Config // guarded by mu, since Reload changes it; ResumeGrace is fixed
	peers PeerFactory
	log   *slog.Logger
	rec   *record.Recorder // Config.Recorder, fixed at construction

	reloadMu sync.Mutex // serializes Reload

	mu        sync.Mutex
	rooms     map[string]*room        // guarded by mu
	resumable map[string]*Participant // by resume token, guarded by mu
	shutdown  bool                    // guarded by mu
}

// NewLocal creates the registry and its listed rooms.
func NewLocal(cfg Config, peers PeerFactory, log *slog.Logger) (*Local, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.MaxParticipants <= 0 {
		return nil, fmt.Errorf("rooms: MaxParticipants must be positive")
	}
	// Every listed room is checked before any starts its goroutine, so a
	// refused configuration leaves nothing running.
	seen := map[string]bool{}
	for _, rc := range cfg.Listed {
		if err := ValidName(rc.Name); err != nil {
			return nil, fmt.Errorf("rooms: listed room: %w", err)
		}
		if seen[rc.Name] {
			return nil, fmt.Errorf("rooms: room %q listed twice", rc.Name)
		}
		seen[rc.Name] = true
	}
	l := &Local{cfg: cfg, peers: peers, log: log, rec: cfg.Recorder, rooms: map[string]*room{}, resumable: map[string]*Participant{}}
	for _, rc := range cfg.Listed {
		l.rooms[rc.Name] = newRoom(l, rc.Name, l.limit(rc), true)
	}
	return l, nil
}

// roomLimits are a room's limits: participants, and viewers apart.
type roomLimits struct{ participants, viewers int }

// defaultMaxViewers is Config.MaxViewers left at 0.
const defaultMaxViewers = 500

func (l *Local) limit(rc RoomConfig) roomLimits {
	lim := roomLimits{participants: l.cfg.MaxParticipants, viewers: l.cfg.MaxViewers}
	if rc.MaxParticipants > 0 {
		lim.participants = rc.MaxParticipants
	}
	if rc.MaxViewers > 0 {
		lim.viewers = rc.MaxViewers
	}
	if lim.viewers <= 0 {
		lim.viewers = defaultMaxViewers
	}
	return lim
}

// ValidName checks a room name: 1-64 letters, digits, '-', '_' or '.'.
func ValidName(name string) error {
	if len(name) == 0 || len(name) > 64 {
		return fmt.Errorf("%w: room name must be 1-64 characters", ErrInvalid)
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return fmt.Errorf("%w: room name %q may hold only letters, digits, '-', '_' and '.'", ErrInvalid, name)
		}
	}
	return nil
}

// room returns the named room, creating it on demand.
func (l *Local) room(name string) (*room, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shutdown {
		return nil, ErrShutdown
	}
	if r, ok := l.rooms[name]; ok {
		if !l.cfg.OnDemand && !l.isListed(name) {
			// Taken off the list by Reload: it runs until empty, without newcomers.
			return nil, fmt.Errorf("%w: %q", ErrRoomNotFound, name)
		}
		return r, nil
	}
	if rc, ok := l.listed(name); ok {
		// A listed room that closed as Reload listed it: made again.
		r := newRoom(l, name, l.limit(rc), true)
		l.rooms[name] = r
		return r, nil
	}
	if !l.cfg.OnDemand {
		return nil, fmt.Errorf("%w: %q", ErrRoomNotFound, name)
	}
	if l.cfg.MaxRooms > 0 && len(l.rooms) >= l.cfg.MaxRooms {
		l.log.Warn("room limit reached: a new room was refused", "room", name, "rooms", len(l.rooms))
		return nil, fmt.Errorf("%w: the server hosts %d rooms already", ErrRoomLimit, len(l.rooms))
	}
	r := newRoom(l, name, l.limit(RoomConfig{}), false)
	l.rooms[name] = r
	l.log.Info("room created", "room", name)
	return r, nil
}

func (l *Local) placement() Placement { return l.cfg.Placement } // fixed at NewLocal

// Hosted lists the rooms with participants: what this node hosts.
func (l *Local) Hosted(ctx context.Context) []string {
	var out []string
	for _, info := range l.Rooms(ctx) {
		if len(info.Participants) > 0 {
			out = append(out, info.Name)
		}
	}
	return out
}

// dropRoom forgets a room that closed itself when it became empty.
func (l *Local) dropRoom(r *room) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rooms[r.name] == r {
		delete(l.rooms, r.name)
		l.log.Info("room removed", "room", r.name)
	}
}

// Join implements Registry.
func (l *Local) Join(ctx context.Context, req JoinRequest) (*Participant, error) {
	if err := ValidName(req.Room); err != nil {
		return nil, err
	}
	name, err := cleanName(req.Name)
	if err != nil {
		return nil, err
	}
	req.Name = name
	if req.Conn == nil {
		return nil, fmt.Errorf("%w: no connection", ErrInvalid)
	}
	a, err := l.authorize(req.Room, req.Token)
	if err != nil {
		l.log.Debug("join refused", "room", req.Room, "err", err)
		return nil, err
	}
	switch req.Via {
	case "":
	case ViaWHIP:
		if !a.perms.Publish {
			return nil, fmt.Errorf("%w: publishing in room %q", ErrForbidden, req.Room)
		}
		a.perms.Subscribe = false // it receives nothing, and decodes nothing for anyone
		req.AutoSubscribe = false
	case ViaWHEP:
		if !a.perms.Subscribe {
			return nil, fmt.Errorf("%w: watching room %q", ErrForbidden, req.Room)
		}
		a.perms.Publish = false
		req.AutoSubscribe = false
	default:
		return nil, fmt.Errorf("%w: unknown client kind %q", ErrInvalid, req.Via)
	}
	if req.Watch != "" && req.Via != ViaWHEP {
		return nil, fmt.Errorf("%w: only a viewer watches one participant", ErrInvalid)
	}
	req.access = a
	if a.name != "" {
		req.Name = a.name // the token's name claim
	}
	if pl := l.placement(); pl != nil {
		if err := pl.Claim(ctx, req.Room); err != nil {
			l.log.Info("join refused: the room is not this node's", "room", req.Room, "err", err)
			return nil, err
		}
	}
	for {
		r, err := l.room(req.Room)
		if err != nil {
			return nil, err
		}
		p, err := r.join(ctx, req)
		if errors.Is(err, errRoomClosed) {
			continue // it emptied and closed between lookup and join: make a new one
		}
		return p, err
	}
}

// Rooms implements Registry.
func (l *Local) Rooms(ctx context.Context) []RoomInfo {
	l.mu.Lock()
	rooms := make([]*room, 0, len(l.rooms))
	for _, r := range l.rooms {
		rooms = append(rooms, r)
	}
	l.mu.Unlock()
	out := make([]RoomInfo, 0, len(rooms))
	for _, r := range rooms {
		info := RoomInfo{Name: r.name}
		if err := r.do(ctx, func() {
			info.MaxParticipants, info.MaxViewers, info.Participants, info.Recording = r.lim.participants, r.lim.viewers, r.infos(nil), r.recording
		}); err != nil {
			continue
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b RoomInfo) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Participant finds a participant by room and id.
func (l *Local) Participant(ctx context.Context, roomName, id string) (*Participant, error) {
	l.mu.Lock()
	r := l.rooms[roomName]
	l.mu.Unlock()
	if r == nil {
		return nil, fmt.Errorf("%w: room %q", ErrRoomNotFound, roomName)
	}
	var p *Participant
	if err := r.do(ctx, func() { p = r.find(id) }); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("%w: participant %q", ErrNotFound, id)
	}
	return p, nil
}

// ErrRemoved is the reason given to participants an operator removes.
var ErrRemoved = errors.New("removed by the operator")

// Remove removes a participant from its room; everyone is told, and its
// client gets the reason.
func (l *Local) Remove(ctx context.Context, roomName, id string) error {
	p, err := l.Participant(ctx, roomName, id)
	if err != nil {
		return err
	}
	p.remove(ErrRemoved)
	return nil
}

// CloseRoom removes every participant of a room (each told why); an
// on-demand room then disappears, a listed one stays, empty.
func (l *Local) CloseRoom(ctx context.Context, roomName string) (int, error) {
	n, err := l.closeRoom(ctx, roomName, ErrRemoved)
	if err == nil {
		l.log.Info("room closed by the operator", "room", roomName, "participants", n)
	}
	return n, err
}

// Evict removes every participant of a room that another node hosts from
// now on (ErrMoved: their clients join again, and reach that node).
func (l *Local) Evict(ctx context.Context, roomName string) (int, error) {
	n, err := l.closeRoom(ctx, roomName, ErrMoved)
	if err == nil {
		l.log.Warn("room moved to another node: its participants were sent there", "room", roomName, "participants", n)
	}
	return n, err
}

func (l *Local) closeRoom(ctx context.Context, roomName string, reason error) (int, error) {
	l.mu.Lock()
	r := l.rooms[roomName]
	l.mu.Unlock()
	if r == nil {
		return 0, fmt.Errorf("%w: %q", ErrRoomNotFound, roomName)
	}
	var parts []*Participant
	if err := r.do(ctx, func() { parts = slices.Clone(r.parts) }); err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.remove(reason)
		}()
	}
	wg.Wait()
	return len(parts), nil
}

// Participants lists the participants of a room, for inspection.
func (l *Local) Participants(ctx context.Context, roomName string) ([]*Participant, error) {
	l.mu.Lock()
	r := l.rooms[roomName]
	l.mu.Unlock()
	if r == nil {
		return nil, fmt.Errorf("%w: %q", ErrRoomNotFound, roomName)
	}
	var parts []*Participant
	if err := r.do(ctx, func() { parts = slices.Clone(r.parts) }); err != nil {
		return nil, err
	}
	return parts, nil
}

// Shutdown implements Registry: no new joins; every participant is told
// (its Conn closed with ErrShutdown) and removed, in parallel.
func (l *Local) Shutdown(ctx context.Context) error { return l.shutdownWith(ctx, ErrShutdown) }

// Drain is Shutdown for a node leaving a cluster: participants are told
// ErrMoved, so that their clients join again on another node.
func (l *Local) Drain(ctx context.Context) error { return l.shutdownWith(ctx, ErrMoved) }

func (l *Local) shutdownWith(ctx context.Context, reason error) error {
	l.mu.Lock()
	l.shutdown = true
	rooms := make([]*room, 0, len(l.rooms))
	for _, r := range l.rooms {
		rooms = append(rooms, r)
	}
	l.mu.Unlock()

	var wg sync.WaitGroup
	for _, r := range rooms {
		var parts []*Participant
		_ = r.do(ctx, func() { parts = slices.Clone(r.parts) })
		for _, p := range parts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.remove(reason)
			}()
		}
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		for _, r := range rooms {
			r.stop()
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
