package api

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/go-playground/validator/v10"

	"github.com/sessionauth/api/middleware"
	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
)

// Passkeys (WebAuthn): registration, listing and removal, the passwordless
// login (also the second step of a password login) and a recent proof.
// With no origin configured these routes answer 404 (requireFeature), right
// after the cross-origin check. Every finish call takes the browser's
// PublicKeyCredential as JSON (PublicKeyCredential.toJSON()) in credential.

type passkeyCredentialRequest struct {
	Credential jsontext.Value `json:"credential" validate:"required,jsonobject"`
}

type passkeyLoginRequest struct {
	Credential jsontext.Value `json:"credential" validate:"required,jsonobject"`
	Remember   *bool          `json:"remember"` // absent: true; a pending session keeps its own choice
}

type passkeyRegisterRequest struct {
	Name       string         `json:"name" validate:"omitempty,max=100,visible"`
	Credential jsontext.Value `json:"credential" validate:"required,jsonobject"`
}

func (r *passkeyRegisterRequest) normalize() { r.Name = services.NormalizeName(r.Name) }

// passkeyResponse is the contract's passkey object: never the credential.
type passkeyResponse struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	CreatedAt  string  `json:"created_at"`
	LastUsedAt *string `json:"last_used_at"`
}

func newPasskeyResponse(pk models.Passkey) passkeyResponse {
	out := passkeyResponse{ID: pk.ID, Name: pk.Name, CreatedAt: formatTime(pk.CreatedAt)}
	if pk.LastUsedAt != nil {
		used := formatTime(*pk.LastUsedAt)
		out.LastUsedAt = &used
	}
	return out
}

type passkeyEnvelope struct {
	Passkey passkeyResponse `json:"passkey"`
}

type passkeyListResponse struct {
	Passkeys []passkeyResponse `json:"passkeys"`
}

// optionsResponse carries the publicKey member of WebAuthn options, in the
// WebAuthn JSON form (binary fields base64url), for
// PublicKeyCredential.parseCreationOptionsFromJSON / parseRequestOptionsFromJSON.
type optionsResponse struct {
	Options any `json:"options"`
}

func handleBeginPasskeyRegistration(passkeys *services.Passkeys) gin.HandlerFunc {
	return func(c *gin.Context) {
		options, err := passkeys.BeginRegistration(c.Request.Context(), middleware.CurrentSession(c).UserID)
		if err != nil {
			_ = c.Error(err)
			return
		}
		c.JSON(http.StatusOK, optionsResponse{Options: options})
	}
}

// handleFinishPasskeyRegistration stores the new passkey. As the user's
// first second factor it ends every other session: the caller gets a new
// session in the same answer.
func handleFinishPasskeyRegistration(v *validator.Validate, passkeys *services.Passkeys, accounts *services.Accounts,
	sess *middleware.SessionManager, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req passkeyRegisterRequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		rec := middleware.CurrentSession(c)
		user, pk, first, err := passkeys.FinishRegistration(c.Request.Context(), rec.UserID,
			services.NewPasskey{Name: req.Name, Credential: req.Credential})
		if err == nil && first {
			err = sess.Login(c, user, middleware.LoginOptions{Forget: rec.Forget})
		}
		if err != nil {
			_ = c.Error(err)
			return
		}
		events.record(c, models.EventPasskeyAdded, user.ID, user.ID, slog.String("passkey", pk.ID))
		accounts.NotifyPasskey(user.Email, pk.Name, true)
		c.JSON(http.StatusCreated, passkeyEnvelope{Passkey: newPasskeyResponse(pk)})
	}
}

func handleListPasskeys(passkeys *services.Passkeys) gin.HandlerFunc {
	return func(c *gin.Context) {
		keys, err := passkeys.List(c.Request.Context(), middleware.CurrentSession(c).UserID)
		if err != nil {
			_ = c.Error(err)
			return
		}
		out := make([]passkeyResponse, len(keys))
		for i, pk := range keys {
			out[i] = newPasskeyResponse(pk)
		}
		c.JSON(http.StatusOK, passkeyListResponse{Passkeys: out})
	}
}

func handleDeletePasskey(passkeys *services.Passkeys, accounts *services.Accounts, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		user, removed, err := passkeys.Delete(c.Request.Context(), middleware.CurrentSession(c).UserID, c.Param("id"))
		if err != nil {
			_ = c.Error(err)
			return
		}
		events.record(c, models.EventPasskeyRemoved, user.ID, user.ID, slog.String("passkey", removed.ID))
		accounts.NotifyPasskey(user.Email, removed.Name, false)
		c.Status(http.StatusNoContent)
	}
}

func handleBeginPasskeyLogin(passkeys *services.Passkeys, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		options, err := passkeys.BeginLogin(c.Request.Context(), c.ClientIP())
		if err != nil {
			events.loginFailure(c, err)
			_ = c.Error(err)
			return
		}
		c.JSON(http.StatusOK, optionsResponse{Options: options})
	}
}

// handleFinishPasskeyLogin logs in with a passkey alone: a new full session.
// At a pending session it completes that user's second step instead, and
// only with their own credential; the full session is then remembered as
// the password login chose.
func handleFinishPasskeyLogin(v *validator.Validate, passkeys *services.Passkeys, sess *middleware.SessionManager,
	events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req passkeyLoginRequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		opts := middleware.LoginOptions{Forget: req.Remember != nil && !*req.Remember}
		pendingID := ""
		if rec := middleware.CurrentSession(c); rec != nil && rec.Pending {
			pendingID, opts.Forget = rec.UserID, rec.Forget
		}
		user, err := passkeys.FinishLogin(c.Request.Context(), req.Credential, pendingID, c.ClientIP())
		if err == nil {
			err = sess.Login(c, user, opts)
		}
		if err != nil {
			events.passkeyFailure(c, pendingID, err)
			_ = c.Error(err)
			return
		}
		if pendingID != "" {
			events.secondFactorUsed(c, user.ID, models.MethodPasskey)
		}
		events.record(c, models.EventLoginSucceeded, user.ID, user.ID, currentHandle(c), slog.String("method", models.MethodPasskey))
		c.JSON(http.StatusOK, userEnvelope{User: newUserResponse(user)})
	}
}

func handleBeginPasskeyReauth(passkeys *services.Passkeys) gin.HandlerFunc {
	return func(c *gin.Context) {
		options, err := passkeys.BeginReauth(c.Request.Context(), middleware.CurrentSession(c).UserID)
		if err != nil {
			_ = c.Error(err)
			return
		}
		c.JSON(http.StatusOK, optionsResponse{Options: options})
	}
}

// handleFinishPasskeyReauth records a recent proof made with a passkey alone.
func handleFinishPasskeyReauth(v *validator.Validate, passkeys *services.Passkeys, sess *middleware.SessionManager,
	events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req passkeyCredentialRequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		rec := middleware.CurrentSession(c)
		err := passkeys.FinishReauth(c.Request.Context(), rec.UserID, req.Credential, c.ClientIP())
		if err == nil {
			err = sess.MarkAuthenticated(c)
		}
		if err != nil {
			events.proofFailure(c, rec.UserID, err)
			_ = c.Error(err)
			return
		}
		events.secondFactorUsed(c, rec.UserID, models.MethodPasskey)
		events.record(c, models.EventReauthenticated, rec.UserID, rec.UserID, slog.String("method", models.MethodPasskey))
		c.JSON(http.StatusOK, successResponse{Success: true})
	}
}
