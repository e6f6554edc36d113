package services

import "testing"

func TestClientIPKeyCountsIPv6PerSlash64AndFoldsMappedIPv4(t *testing.T) {
	cases := []struct{ ip, want string }{
		{"198.51.100.7", "198.51.100.7"},
		{"::ffff:198.51.100.7", "198.51.100.7"},
		{"::FFFF:c633:6407", "198.51.100.7"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:DB8:1:2:0:0:0:9", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"", ""},
		{"not an ip", "not an ip"},
	}
	for _, tc := range cases {
		if got := clientIPKey(tc.ip); got != tc.want {
			t.Errorf("clientIPKey(%q): got %q, want %q", tc.ip, got, tc.want)
		}
	}
}
