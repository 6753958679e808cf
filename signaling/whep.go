package signaling

import (
	"context"
	"net/http"

	"github.com/tessera-rtc/tessera/rooms"
)

// WHEP: a player watches a room with one HTTP request (httpsession.go):
// POST /whep/{room} plays the room's speaker, switching as speakers
// change; POST /whep/{room}/{participant} plays one participant. The
// player offers to receive audio and video; the server answers with the
// codecs of its offer that it forwards, and feeds it whoever it watches
// on those two streams, never renegotiating (rooms/viewers.go). The viewer
// is a participant of the room, marked rooms.ViaWHEP, that needs the
// subscribe permission.

// WHEP returns the handler of /whep/{room}[/{participant}] and of the
// sessions' URLs below it; mount it at /whep/.
func (h *Handler) WHEP() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whep/{room}", h.whepPost)
	mux.HandleFunc("POST /whep/{room}/{participant}", h.whepPost)
	mux.HandleFunc("PATCH /whep/{room}/session/{session}", h.sessionPatch(rooms.ViaWHEP))
	mux.HandleFunc("DELETE /whep/{room}/session/{session}", h.sessionDelete(rooms.ViaWHEP))
	mux.HandleFunc("OPTIONS /whep/", h.httpOptions)
	return httpCORS(mux)
}

func (h *Handler) whepPost(w http.ResponseWriter, r *http.Request) {
	h.startSession(w, r, sessionSpec{
		via: rooms.ViaWHEP, name: "WHEP viewer", watch: r.PathValue("participant"),
		started: func(ctx context.Context, p *rooms.Participant) error { return p.Watch(ctx) },
	})
}

// WHEPSessions counts the WHEP viewers connected here.
func (h *Handler) WHEPSessions() int { return h.countSessions(rooms.ViaWHEP) }
