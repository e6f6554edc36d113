package api

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/go-playground/validator/v10"

	"github.com/sessionauth/api/middleware"
	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
)

func handleRegister(enabled bool, v *validator.Validate, auth *services.Auth, accounts *services.Accounts, sess *middleware.SessionManager, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !enabled { // answered before the body is read
			_ = c.Error(models.ErrRegistrationDisabled)
			return
		}
		var req registerRequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		user, err := auth.Register(c.Request.Context(), services.Registration{Email: req.Email, Name: req.Name, Password: req.Password}, c.ClientIP())
		if err == nil {
			err = sess.Login(c, user, middleware.LoginOptions{})
		}
		if err != nil {
			_ = c.Error(err)
			return
		}
		events.record(c, models.EventUserRegistered, user.ID, user.ID, currentHandle(c))
		accounts.Welcome(user) // the verification link, after the answer
		c.JSON(http.StatusCreated, userEnvelope{User: newUserResponse(user)})
	}
}

// handleLogin checks the password. A user with a second factor gets a
// pending session and the methods to complete it with (POST /login/mfa, or a
// passkey); anyone else a full session.
func handleLogin(v *validator.Validate, auth *services.Auth, mfa *services.MFA, sess *middleware.SessionManager, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req credentialsRequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		user, err := auth.Login(c.Request.Context(), req.Email, req.Password, c.ClientIP())
		opts := middleware.LoginOptions{Forget: req.Remember != nil && !*req.Remember, Pending: user.HasSecondFactor()}
		var methods []string
		if err == nil && opts.Pending {
			methods, err = mfa.Methods(c.Request.Context(), user)
		}
		if err == nil {
			err = sess.Login(c, user, opts)
		}
		if err != nil {
			events.loginFailure(c, err)
			_ = c.Error(err)
			return
		}
		if opts.Pending {
			c.JSON(http.StatusOK, mfaRequiredResponse{MFARequired: true, Methods: methods})
			return
		}
		events.record(c, models.EventLoginSucceeded, user.ID, user.ID, currentHandle(c))
		c.JSON(http.StatusOK, userEnvelope{User: newUserResponse(user)})
	}
}

func handleLogout(sess *middleware.SessionManager, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		rec := middleware.CurrentSession(c)
		if err := sess.Logout(c); err != nil {
			_ = c.Error(err)
			return
		}
		if rec != nil {
			events.record(c, models.EventLogout, rec.UserID, rec.UserID, slog.String("session", rec.Handle()))
		}
		c.JSON(http.StatusOK, successResponse{Success: true})
	}
}

func handleLogoutAll(sessions *services.SessionStore, sess *middleware.SessionManager, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		rec := middleware.CurrentSession(c)
		revoked, err := sessions.RevokeUser(c.Request.Context(), rec.UserID, 0)
		if err != nil {
			_ = c.Error(err)
			return
		}
		sess.ExpireCookie(c)
		events.record(c, models.EventLogoutAll, rec.UserID, rec.UserID, slog.Int("revoked", revoked))
		c.JSON(http.StatusOK, revokedResponse{Success: true, Revoked: revoked})
	}
}

// handleMe answers from the session record alone: no database read.
func handleMe() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.JSON(http.StatusOK, userEnvelope{User: newUserResponse(middleware.CurrentSession(c).User())})
	}
}

func handleChangePassword(v *validator.Validate, auth *services.Auth, accounts *services.Accounts, sess *middleware.SessionManager, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req passwordRequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		rec := middleware.CurrentSession(c)
		user, err := auth.ChangePassword(c.Request.Context(), rec.UserID, rec.Email, req.CurrentPassword, req.NewPassword, c.ClientIP())
		if err == nil {
			// A new id whose lifetimes start afresh, remembered as the old one was.
			err = sess.Login(c, user, middleware.LoginOptions{Forget: rec.Forget})
		}
		if err != nil {
			events.proofFailure(c, rec.UserID, err)
			_ = c.Error(err)
			return
		}
		events.record(c, models.EventPasswordChanged, rec.UserID, rec.UserID, currentHandle(c))
		accounts.NotifyPasswordChanged(rec.Email)
		c.JSON(http.StatusOK, successResponse{Success: true})
	}
}

// handleReauth records a recent proof: the password, plus a TOTP or
// recovery code while TOTP is on.
func handleReauth(v *validator.Validate, mfa *services.MFA, sess *middleware.SessionManager, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req reauthRequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		rec := middleware.CurrentSession(c)
		method, err := mfa.Reauthenticate(c.Request.Context(), rec.UserID, rec.Email, req.Password, services.AnyCode(req.Code), c.ClientIP())
		if err == nil {
			err = sess.MarkAuthenticated(c)
		}
		if err != nil {
			events.proofFailure(c, rec.UserID, err)
			_ = c.Error(err)
			return
		}
		events.secondFactorUsed(c, rec.UserID, method)
		events.record(c, models.EventReauthenticated, rec.UserID, rec.UserID)
		c.JSON(http.StatusOK, successResponse{Success: true})
	}
}

// currentHandle names, for an event, the session the request now holds (the
// one a login just created) by its listing handle, never by its id.
func currentHandle(c *gin.Context) slog.Attr {
	if rec := middleware.CurrentSession(c); rec != nil {
		return slog.String("session", rec.Handle())
	}
	return slog.Attr{}
}
