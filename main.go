// Command api serves the session-authentication JSON API; it also applies
// migrations (migrate) and creates users (create-user).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sessionauth/api/api"
	"github.com/sessionauth/api/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		stop()
		os.Exit(1)
	}
}

// run reads the configuration, builds the application once (api.New, as
// the commands and the tests do) and serves it with graceful shutdown, or
// runs the command that args name.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	getenv, err := config.WithDotEnv(".env", getenv)
	if err != nil {
		return err
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	logOut := newBufferedLog(stderr)
	defer logOut.Close()
	log := newLogger(logOut, cfg.LogLevel)
	gin.SetMode(gin.ReleaseMode)

	if len(args) > 0 {
		return runCommand(ctx, args, cfg, stdin, stdout, stderr)
	}
	app, err := api.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.Close()
	if app.Metrics != nil && cfg.Metrics.Addr != "" {
		stopMetrics, err := serveMetrics(cfg, app.Metrics, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	srv := api.NewHTTPServer(cfg.HTTP.Addr, app.Handler, api.ServerTimeouts(cfg.HTTP.Timeouts), log)
	return serve(ctx, srv, cfg.HTTP.ShutdownDrain, cfg.HTTP.ShutdownTimeout, app.DrainMail, log)
}

// serveMetrics serves GET /metrics on a listener of its own (METRICS_ADDR),
// so the public port never shows it; stop closes it. A taken address stops the start.
func serveMetrics(cfg config.Config, handler http.Handler, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", handler)
	srv := api.NewHTTPServer(cfg.Metrics.Addr, mux, api.ServerTimeouts(cfg.HTTP.Timeouts), log)
	ln, err := net.Listen("tcp", cfg.Metrics.Addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// serve runs srv until ctx ends, then drains (every answer closes its
// connection) and lets in-flight requests finish within timeout, then sends
// the queued mail within what is left of it (drainMail), before Redis and
// the database are closed by run's defers.
func serve(ctx context.Context, srv *http.Server, drain, timeout time.Duration, drainMail func(context.Context), log *slog.Logger) error {
	var draining atomic.Bool
	srv.Handler = api.DrainingHandler(srv.Handler, &draining)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("listening", "addr", srv.Addr)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "drain", drain.String(), "timeout", timeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	defer drainMail(shutdownCtx) // after the requests that could still queue mail
	draining.Store(true)
	select {
	case <-time.After(min(drain, timeout/2)):
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	}
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
