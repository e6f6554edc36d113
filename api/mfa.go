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

// The second factor: TOTP enrolment and removal, recovery codes, and the
// second step of a login.

type totpCodeRequest struct {
	Code string `json:"code" validate:"required,max=32"`
}

type loginMFARequest struct {
	Code         string `json:"code" validate:"required_without=RecoveryCode,max=32"`
	RecoveryCode string `json:"recovery_code" validate:"required_without=Code,max=32"`
}

type totpSetupResponse struct {
	Secret     string `json:"secret"`
	OTPAuthURI string `json:"otpauth_uri"`
}

type recoveryCodesResponse struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

type mfaRequiredResponse struct {
	MFARequired bool     `json:"mfa_required"`
	Methods     []string `json:"methods"`
}

// handleBeginTOTP makes a TOTP secret for the caller to confirm.
func handleBeginTOTP(mfa *services.MFA) gin.HandlerFunc {
	return func(c *gin.Context) {
		rec := middleware.CurrentSession(c)
		secret, uri, err := mfa.BeginTOTP(c.Request.Context(), rec.UserID, rec.Email)
		if err != nil {
			_ = c.Error(err)
			return
		}
		c.PureJSON(http.StatusOK, totpSetupResponse{Secret: secret, OTPAuthURI: uri}) // the URI's & as is, not \u0026
	}
}

// handleConfirmTOTP turns TOTP on with a first code and answers the recovery
// codes, once. As the user's first factor it ends every other session: the
// caller gets a new session in the same answer.
func handleConfirmTOTP(v *validator.Validate, mfa *services.MFA, accounts *services.Accounts, sess *middleware.SessionManager,
	events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req totpCodeRequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		rec := middleware.CurrentSession(c)
		user, codes, first, err := mfa.ConfirmTOTP(c.Request.Context(), rec.UserID, req.Code)
		if err == nil && first {
			err = sess.Login(c, user, middleware.LoginOptions{Forget: rec.Forget})
		}
		if err != nil {
			_ = c.Error(err)
			return
		}
		events.record(c, models.EventMFAEnabled, user.ID, user.ID, slog.String("method", models.MethodTOTP))
		accounts.NotifySecondFactor(user.Email, true)
		c.JSON(http.StatusOK, recoveryCodesResponse{RecoveryCodes: codes})
	}
}

func handleDisableTOTP(mfa *services.MFA, accounts *services.Accounts, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		user, err := mfa.DisableTOTP(c.Request.Context(), middleware.CurrentSession(c).UserID)
		if err != nil {
			_ = c.Error(err)
			return
		}
		events.record(c, models.EventMFADisabled, user.ID, user.ID, slog.String("method", models.MethodTOTP))
		accounts.NotifySecondFactor(user.Email, false)
		c.Status(http.StatusNoContent)
	}
}

func handleNewRecoveryCodes(mfa *services.MFA) gin.HandlerFunc {
	return func(c *gin.Context) {
		codes, err := mfa.NewRecoveryCodes(c.Request.Context(), middleware.CurrentSession(c).UserID)
		if err != nil {
			_ = c.Error(err)
			return
		}
		c.JSON(http.StatusOK, recoveryCodesResponse{RecoveryCodes: codes})
	}
}

// handleLoginMFA completes a pending login with a TOTP or recovery code: the
// pending session is replaced by a full one, remembered as the login chose.
func handleLoginMFA(v *validator.Validate, mfa *services.MFA, sess *middleware.SessionManager, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req loginMFARequest
		if err := bindJSON(c, v, &req); err != nil {
			_ = c.Error(err)
			return
		}
		pending := middleware.CurrentSession(c)
		user, method, err := mfa.CompleteLogin(c.Request.Context(), pending.UserID,
			services.Code{TOTP: req.Code, Recovery: req.RecoveryCode}, c.ClientIP())
		if err == nil {
			err = sess.Login(c, user, middleware.LoginOptions{Forget: pending.Forget})
		}
		if err != nil {
			events.proofFailure(c, pending.UserID, err)
			_ = c.Error(err)
			return
		}
		events.secondFactorUsed(c, user.ID, method)
		events.record(c, models.EventLoginSucceeded, user.ID, user.ID, currentHandle(c))
		c.JSON(http.StatusOK, userEnvelope{User: newUserResponse(user)})
	}
}

// handleAdminRemoveMFA removes every second factor of a user and ends their
// sessions: the way back for a user who lost every device.
func handleAdminRemoveMFA(mfa *services.MFA, accounts *services.Accounts, sess *middleware.SessionManager, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := userIDParam(c)
		var user models.User
		var had bool
		if err == nil {
			user, had, err = mfa.RemoveFactors(c.Request.Context(), id)
		}
		if err != nil {
			_ = c.Error(err)
			return
		}
		actor := expireOwnCookie(c, sess, id)
		if had { // a user without a factor lost nothing: their sessions still end, nothing to tell
			events.record(c, models.EventMFADisabled, actor.UserID, user.ID, slog.String("method", "all"))
			accounts.NotifySecondFactor(user.Email, false)
		}
		c.Status(http.StatusNoContent)
	}
}
