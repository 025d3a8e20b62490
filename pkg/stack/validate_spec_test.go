package stack

import (
	"strings"
	"testing"
)

func TestValidateImage(t *testing.T) {
	tests := []struct {
		image string
		err   string
	}{
		{"microctl/greeter:dev", ""},
		{"greeter", ""},
		{"registry.local:5000/a/b@sha256:" + strings.Repeat("a", 64), ""},
		{"Microctl/Greeter:dev", "must be lowercase"},
		{"microctl/greeter:", "invalid reference format"},
		{"microctl/greeter:bad tag", "invalid reference format"},
		{"", "empty reference"},
	}
	for _, tt := range tests {
		err := ValidateImage(tt.image)
		if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("ValidateImage(%q) = %v, want %q", tt.image, err, tt.err)
		}
	}
}

func TestValidateConstraint(t *testing.T) {
	tests := []struct {
		c   string
		err string
	}{
		{"node.role==manager", ""},
		{"node.role == manager", ""},
		{"node.labels.zone!=eu-1", ""},
		{"engine.labels.os==linux", ""},
		{"node.ip==10.0.0.0/8", ""},
		{"node.role=manager", "expected KEY==VALUE"},
		{"node.role>=manager", "expected KEY==VALUE"},
		{"node.rol==manager", "unknown key"},
		{"node.labels.==x", "unknown key"},
		{"1node==x", "invalid key"},
		{"node.role==man<ager", "invalid value"},
		{"node.role==", "invalid value"},
	}
	for _, tt := range tests {
		err := ValidateConstraint(tt.c)
		if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("ValidateConstraint(%q) = %v, want %q", tt.c, err, tt.err)
		}
	}
}
