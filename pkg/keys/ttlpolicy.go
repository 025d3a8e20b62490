package keys

import (
	"context"
	"fmt"
	"time"
)

// TTLPolicyError means `key sign --ttl` asked for a token that outlives the
// ring's rotation period. Recording such a lifetime would make every later
// rotation keep the outgoing key verifiable that long (a typo such as
// 100000h keeps every key for eleven years), so it needs --force. Nothing
// was written and no token was made.
type TTLPolicyError struct {
	TTL    time.Duration
	Period time.Duration
}

func (e *TTLPolicyError) Error() string {
	return fmt.Sprintf("--ttl %s is longer than the ring's rotation period %s: every later rotation would keep the outgoing key verifiable that long; nothing was written",
		e.TTL, e.Period)
}

// Hint says what to do about it.
func (e *TTLPolicyError) Hint() string {
	return "use a shorter --ttl, or --force to raise the ring's grace to it"
}

// checkTTLPolicy refuses, without force, a TTL that the ring does not
// already cover and that is longer than its rotation period. A TTL up to
// the period is recorded as before (see RecordTTL).
func (s *Store) checkTTLPolicy(ctx context.Context, ttl time.Duration, force bool) error {
	if force {
		return nil
	}
	ring, err := s.Ring(ctx)
	if err != nil {
		return err
	}
	if SecondsOf(ttl) <= max(ring.MaxTokenTTL, ring.IssuedMaxTTL) {
		return nil
	}
	period := ring.RotationPeriod.Duration()
	if period <= 0 {
		period = DefaultRotationPeriod
	}
	if ttl > period {
		return &TTLPolicyError{TTL: ttl, Period: period}
	}
	return nil
}
