// Package pionlog routes pion's logs into log/slog.
package pionlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// Factory routes pion's logs into slog. pion's own messages are
// diagnostics of the library, some of them possibly per packet, so they go
// out one level lower than pion rates them: errors as warnings, the rest at
// debug. The server logs the events that matter (joins, ICE states,
// negotiation failures) itself.
//
// Quiet puts pion's errors at debug too: for a part that remote input
// reaches before any check (the TURN server rejecting a forged request),
// where a warning per bad request would let anyone flood the log.
type Factory struct {
	Log   *slog.Logger
	Quiet bool
}

// NewLogger implements logging.LoggerFactory.
func (f Factory) NewLogger(scope string) logging.LeveledLogger {
	errLevel := slog.LevelWarn
	if f.Quiet {
		errLevel = slog.LevelDebug
	}
	return pionLogger{log: f.Log.With("pion", scope), errLevel: errLevel}
}

type pionLogger struct {
	log      *slog.Logger
	errLevel slog.Level
}

func (l pionLogger) logf(level slog.Level, format string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
}

func (l pionLogger) Trace(string)                 {}
func (l pionLogger) Tracef(string, ...any)        {}
func (l pionLogger) Debug(msg string)             { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Debugf(f string, args ...any) { l.logf(slog.LevelDebug, f, args...) }
func (l pionLogger) Info(msg string)              { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Infof(f string, args ...any)  { l.logf(slog.LevelDebug, f, args...) }
func (l pionLogger) Warn(msg string)              { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Warnf(f string, args ...any)  { l.logf(slog.LevelDebug, f, args...) }
func (l pionLogger) Error(msg string)             { l.logf(l.errLevel, "%s", msg) }
func (l pionLogger) Errorf(f string, args ...any) { l.logf(l.errLevel, f, args...) }
