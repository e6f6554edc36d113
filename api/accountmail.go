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

// The account flows that go through mail: password reset, email
// verification and change. In production without MAIL_URL these routes
// answer 404 (requireFeature), right after the cross-origin check.

type forgotRequest struct {
	Email string `json:"email" validate:"required,max=254,email,ascii"`
}

func (r *forgotRequest) normalize() { r.Email = services.NormalizeEmail(r.Email) }

type resetRequest struct {
	Token       string `json:"token" validate:"required,max=256"`
	NewPassword string `json:"new_password" validate:"required,min=8,max=128"`
}

type verifyRequest struct {
	Token string `json:"token" validate:"required,max=256"`
}

type emailChangeRequest struct {
	Email    string `json:"email" validate:"required,max=254,email,ascii"`
	Password string `json:"password" validate:"required,max=128"`
}

func (r *emailChangeRequest) normalize() { r.Email = services.NormalizeEmail(r.Email) }

// requireFeature answers 404 while a feature is off (mail without MAIL_URL in
// production, passkeys without an origin), so its routes look absent.
func requireFeature(enabled bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !enabled {
			_ = c.Error(models.ErrNotFound)
			c.Abort()
			return
		}
		c.Next()
	}
}

// requester is who asked, for events recorded after the answer.
func requester(c *gin.Context) services.Requester {
	by := services.Requester{IP: c.ClientIP(), UserAgent: c.Request.UserAgent()}
	if rec := middleware.CurrentSession(c); rec != nil {
		by.ActorID = rec.UserID
	}
	return by
}

// handleForgotPassword answers 202 to every well-formed email in the same
// time: the account is looked up by the mail worker, after the answer.
func handleForgotPassword(v *validator.Validate, accounts *services.Accounts) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req forgotRequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		if err := accounts.ForgotPassword(c.Request.Context(), req.Email, requester(c)); err != nil {
			_ = c.Error(err)
			return
		}
		c.JSON(http.StatusAccepted, successResponse{Success: true})
	}
}

func handleResetPassword(v *validator.Validate, accounts *services.Accounts, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req resetRequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		user, err := accounts.ResetPassword(c.Request.Context(), req.Token, req.NewPassword, c.ClientIP())
		if err != nil {
			_ = c.Error(err)
			return
		}
		events.record(c, models.EventPasswordReset, user.ID, user.ID)
		c.JSON(http.StatusOK, successResponse{Success: true})
	}
}

func handleVerifyEmail(v *validator.Validate, accounts *services.Accounts, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req verifyRequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		user, purpose, err := accounts.VerifyEmail(c.Request.Context(), req.Token, c.ClientIP())
		if err != nil {
			_ = c.Error(err)
			return
		}
		events.record(c, models.EventEmailVerified, user.ID, user.ID, slog.String("via", string(purpose)))
		c.JSON(http.StatusOK, successResponse{Success: true})
	}
}

// handleSendVerification sends the verification link again: 202, or 200
// when the email is already verified.
func handleSendVerification(accounts *services.Accounts) gin.HandlerFunc {
	return func(c *gin.Context) {
		verified, err := accounts.SendVerification(c.Request.Context(), middleware.CurrentSession(c).UserID)
		if err != nil {
			_ = c.Error(err)
			return
		}
		status := http.StatusAccepted
		if verified {
			status = http.StatusOK
		}
		c.JSON(status, successResponse{Success: true})
	}
}

func handleRequestEmailChange(v *validator.Validate, accounts *services.Accounts, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req emailChangeRequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		rec := middleware.CurrentSession(c)
		err := accounts.RequestEmailChange(c.Request.Context(), rec.UserID, rec.Email, req.Password, req.Email, c.ClientIP())
		if err != nil {
			events.proofFailure(c, rec.UserID, err)
			_ = c.Error(err)
			return
		}
		events.record(c, models.EventEmailChangeRequested, rec.UserID, rec.UserID)
		c.JSON(http.StatusAccepted, successResponse{Success: true})
	}
}

// handleAdminPasswordReset mails a reset link to a user; a disabled user
// gets none, with the same answer.
func handleAdminPasswordReset(accounts *services.Accounts) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := accounts.SendPasswordReset(c.Request.Context(), c.Param("id"), requester(c)); err != nil {
			_ = c.Error(err)
			return
		}
		c.JSON(http.StatusAccepted, successResponse{Success: true})
	}
}
