package pinset

import (
	"context"
	"fmt"
	"log/slog"
)

// crdtLogger adapts a slog.Logger to the go-log StandardLogger that
// go-ds-crdt takes. Fatal and Panic log at error level and return: a
// library's log call never ends the process.
type crdtLogger struct{ l *slog.Logger }

func (c crdtLogger) log(level slog.Level, msg string) {
	c.l.Log(context.Background(), level, msg, "component", "go-ds-crdt")
}

func (c crdtLogger) Debug(args ...any) { c.log(slog.LevelDebug, fmt.Sprint(args...)) }
func (c crdtLogger) Debugf(format string, args ...any) {
	c.log(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (c crdtLogger) Info(args ...any) { c.log(slog.LevelInfo, fmt.Sprint(args...)) }
func (c crdtLogger) Infof(format string, args ...any) {
	c.log(slog.LevelInfo, fmt.Sprintf(format, args...))
}
func (c crdtLogger) Warn(args ...any) { c.log(slog.LevelWarn, fmt.Sprint(args...)) }
func (c crdtLogger) Warnf(format string, args ...any) {
	c.log(slog.LevelWarn, fmt.Sprintf(format, args...))
}
func (c crdtLogger) Error(args ...any) { c.log(slog.LevelError, fmt.Sprint(args...)) }
func (c crdtLogger) Errorf(format string, args ...any) {
	c.log(slog.LevelError, fmt.Sprintf(format, args...))
}
func (c crdtLogger) Fatal(args ...any) { c.Error(args...) }
func (c crdtLogger) Fatalf(format string, args ...any) {
	c.Errorf(format, args...)
}
func (c crdtLogger) Panic(args ...any) { c.Error(args...) }
func (c crdtLogger) Panicf(format string, args ...any) {
	c.Errorf(format, args...)
}
