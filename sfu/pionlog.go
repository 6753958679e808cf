package sfu

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLoggerFactory routes pion's logs into slog. pion's own messages are
// diagnostics of the library, some of them possibly per packet, so they go
// out one level lower than pion rates them: errors as warnings, the rest at
// debug. The server logs the events that matter (joins, ICE states,
// negotiation failures) itself.
type pionLoggerFactory struct{ log *slog.Logger }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

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
func (l pionLogger) Error(msg string)             { l.logf(slog.LevelWarn, "%s", msg) }
func (l pionLogger) Errorf(f string, args ...any) { l.logf(slog.LevelWarn, f, args...) }
