package inspect

import (
	"encoding/json"
	"net/http"
)

// Error codes of the JSON error bodies.
const (
	codeUnauthorized     = "unauthorized"
	codeNotFound         = "not-found"
	codeMethodNotAllowed = "method-not-allowed"
	codeUnavailable      = "unavailable"
	codeConflict         = "conflict" // asked of a server not set up for it (recording)
	codeInternal         = "internal"
)

// errorBody is every error answer: {"error": {"code": ..., "message": ...}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// writeJSON answers with v, indented so that curl output reads well.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status = http.StatusInternalServerError
		data, _ = json.Marshal(errorBody{Error: errorDetail{Code: codeInternal, Message: "encoding the answer: " + err.Error()}})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
