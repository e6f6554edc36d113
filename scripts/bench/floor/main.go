// Command floor is a FLOOR reference for GET /me: the least work a server-side session check can do,
// so that the peer's and the product's numbers can be read against it.
//
//	FLOOR_MODE=redis     GET /me = one Redis GET of the session key, then a fixed small JSON.
//	FLOOR_MODE=redis-pg  GET /me = one Redis GET, decode the user id, one Postgres primary-key SELECT
//	                     (pgx/v5 pool), JSON of that row: the minimum for /me with fresh user data.
//
// POST /register and POST /login exist only so that the same harness (scripts/bench/me-throughput.sh)
// can get a session cookie; they do no password hashing or checking. Not a product: no validation.
//
// Environment: FLOOR_ADDR (default 127.0.0.1:8091), FLOOR_MODE, REDIS_URL
// (default redis://127.0.0.1:6379), DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test),
// FLOOR_PG_MAX_CONNS (default 8), FLOOR_REDIS_POOL (default: go-redis's 10*GOMAXPROCS).
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

const (
	keyPrefix  = "floor:sess:" // not "sess:", so the peer's KEYS sess:* never sees these
	cookieName = "sessionId"
	sessionTTL = 7 * 24 * time.Hour
)

var fixedMe = []byte(`{"user":{"id":"00000000-0000-0000-0000-000000000000","email":"floor@example.com","name":"Floor","role":"user","created_at":"2026-01-01T00:00:00Z"}}`)

type user struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

type sessionValue struct {
	UserID string `json:"userId"`
	Email  string `json:"email"`
	Role   string `json:"role"`
}

type server struct {
	mode string
	rdb  *redis.Client
	db   *pgxpool.Pool
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func main() {
	mode := env("FLOOR_MODE", "redis")
	if mode != "redis" && mode != "redis-pg" {
		log.Fatalf("FLOOR_MODE must be redis or redis-pg, not %q", mode)
	}
	ctx := context.Background()

	ropt, err := redis.ParseURL(env("REDIS_URL", "redis://127.0.0.1:6379"))
	if err != nil {
		log.Fatalf("REDIS_URL: %v", err)
	}
	if n, err := strconv.Atoi(os.Getenv("FLOOR_REDIS_POOL")); err == nil && n > 0 {
		ropt.PoolSize = n
	}
	rdb := redis.NewClient(ropt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		log.Fatalf("redis: %v", err)
	}

	pcfg, err := pgxpool.ParseConfig(env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"))
	if err != nil {
		log.Fatalf("DATABASE_URL: %v", err)
	}
	pcfg.MaxConns = 8
	if n, err := strconv.Atoi(os.Getenv("FLOOR_PG_MAX_CONNS")); err == nil && n > 0 {
		pcfg.MaxConns = int32(n)
	}
	db, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		log.Fatalf("postgres: %v", err)
	}
	if _, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS floor_users (
		id         uuid PRIMARY KEY,
		email      text NOT NULL UNIQUE,
		name       text NOT NULL,
		role       text NOT NULL DEFAULT 'user',
		created_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		log.Fatalf("postgres: create table: %v", err)
	}

	s := &server{mode: mode, rdb: rdb, db: db}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /me", s.me)
	mux.HandleFunc("POST /register", s.register)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	})

	addr := env("FLOOR_ADDR", "127.0.0.1:8091")
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	pool := "go-redis default (10 x GOMAXPROCS)"
	if ropt.PoolSize > 0 {
		pool = strconv.Itoa(ropt.PoolSize)
	}
	log.Printf("floor mode=%s listening on %s (pg max conns %d, redis pool %s)", mode, addr, pcfg.MaxConns, pool)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	db.Close()
	rdb.Close()
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}

var notAuthenticated = []byte(`{"error":"not_authenticated","message":"Not authenticated"}`)

func (s *server) me(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		writeJSON(w, http.StatusUnauthorized, notAuthenticated)
		return
	}
	ctx := r.Context()
	val, err := s.rdb.Get(ctx, keyPrefix+c.Value).Bytes()
	if errors.Is(err, redis.Nil) {
		writeJSON(w, http.StatusUnauthorized, notAuthenticated)
		return
	} else if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"error":"service_unavailable","message":"Redis unavailable"}`))
		return
	}
	if s.mode == "redis" {
		writeJSON(w, http.StatusOK, fixedMe)
		return
	}
	var sv sessionValue
	if err := json.Unmarshal(val, &sv); err != nil || sv.UserID == "" {
		writeJSON(w, http.StatusUnauthorized, notAuthenticated)
		return
	}
	var u user
	err = s.db.QueryRow(ctx, `SELECT id::text, email, name, role, created_at FROM floor_users WHERE id = $1`, sv.UserID).
		Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		writeJSON(w, http.StatusUnauthorized, notAuthenticated)
		return
	} else if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"error":"service_unavailable","message":"Database unavailable"}`))
		return
	}
	u.CreatedAt = u.CreatedAt.UTC()
	body, _ := json.Marshal(struct {
		User user `json:"user"`
	}{u})
	writeJSON(w, http.StatusOK, body)
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *server) register(w http.ResponseWriter, r *http.Request) {
	var in credentials
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil || in.Email == "" {
		writeJSON(w, http.StatusBadRequest, []byte(`{"error":"invalid_json","message":"bad body"}`))
		return
	}
	if in.Name == "" {
		in.Name = "Floor"
	}
	var u user
	err := s.db.QueryRow(r.Context(),
		`INSERT INTO floor_users (id, email, name) VALUES (gen_random_uuid(), lower(trim($1)), $2)
		 RETURNING id::text, email, name, role, created_at`, in.Email, in.Name).
		Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.CreatedAt)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		writeJSON(w, http.StatusConflict, []byte(`{"error":"email_taken","message":"That email is already registered"}`))
		return
	} else if err != nil {
		log.Printf("register: %v", err)
		writeJSON(w, http.StatusInternalServerError, []byte(`{"error":"internal_error","message":"Internal error"}`))
		return
	}
	s.startSession(w, r, u, http.StatusCreated)
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	var in credentials
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil || in.Email == "" {
		writeJSON(w, http.StatusBadRequest, []byte(`{"error":"invalid_json","message":"bad body"}`))
		return
	}
	var u user
	err := s.db.QueryRow(r.Context(),
		`SELECT id::text, email, name, role, created_at FROM floor_users WHERE email = lower(trim($1))`, in.Email).
		Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		writeJSON(w, http.StatusUnauthorized, []byte(`{"error":"invalid_credentials","message":"Invalid credentials"}`))
		return
	} else if err != nil {
		log.Printf("login: %v", err)
		writeJSON(w, http.StatusInternalServerError, []byte(`{"error":"internal_error","message":"Internal error"}`))
		return
	}
	s.startSession(w, r, u, http.StatusOK)
}

func (s *server) startSession(w http.ResponseWriter, r *http.Request, u user, status int) {
	id := newID()
	val, _ := json.Marshal(sessionValue{UserID: u.ID, Email: u.Email, Role: u.Role})
	if err := s.rdb.Set(r.Context(), keyPrefix+id, val, sessionTTL).Err(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"error":"service_unavailable","message":"Redis unavailable"}`))
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL / time.Second),
	})
	u.CreatedAt = u.CreatedAt.UTC()
	body, _ := json.Marshal(struct {
		User user `json:"user"`
	}{u})
	writeJSON(w, status, body)
}
