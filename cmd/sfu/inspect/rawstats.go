package inspect

import (
	"encoding/json"
	"net/http"
)

// serveRawStats answers pion's GetStats of one participant's
// PeerConnection: an object of stats by id, as RTCStatsReport is in a
// browser (the server's side of the connection: inbound-rtp for what the
// participant publishes, candidate pairs, transports, codecs).
func (s *Server) serveRawStats(w http.ResponseWriter, r *http.Request) {
	room, id := r.PathValue("room"), r.PathValue("id")
	p, err := s.cfg.Rooms.Participant(r.Context(), room, id)
	if err != nil {
		s.registryError(w, r, room, err)
		return
	}
	report := p.Peer().RawStats()
	out := make(map[string]json.RawMessage, len(report)) // encoded sorted by id
	for k, st := range report {
		data, err := json.Marshal(st)
		if err != nil {
			// One stat that cannot be encoded (a NaN, say) does not hide the others.
			data, _ = json.Marshal(map[string]string{"id": k, "error": err.Error()})
		}
		out[k] = data
	}
	writeJSON(w, http.StatusOK, out)
}
