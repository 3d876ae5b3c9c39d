package pac

// script is the fixed part of every generated PAC file; Generate prepends the
// portcullis* variables it reads. It is ES3 (no let, no arrow functions) so
// every PAC engine runs it.
const script = `
function portcullisIsIPv4(h) {
	return /^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(h);
}

// portcullisV6Words parses an IPv6 address into 8 numbers, or returns null.
function portcullisV6Words(a) {
	var z = a.indexOf("%");
	if (z >= 0) a = a.substring(0, z);
	var halves = a.split("::");
	if (halves.length > 2) return null;
	var groups = function (s) {
		if (s == "") return [];
		var p = s.split(":"), out = [];
		for (var i = 0; i < p.length; i++) {
			if (i == p.length - 1 && portcullisIsIPv4(p[i])) {
				var q = p[i].split(".");
				out.push(parseInt(q[0], 10) * 256 + parseInt(q[1], 10));
				out.push(parseInt(q[2], 10) * 256 + parseInt(q[3], 10));
			} else if (/^[0-9a-f]{1,4}$/.test(p[i])) {
				out.push(parseInt(p[i], 16));
			} else {
				return null;
			}
		}
		return out;
	};
	var head = groups(halves[0]), tail = halves.length == 2 ? groups(halves[1]) : [];
	if (head == null || tail == null) return null;
	var missing = 8 - head.length - tail.length;
	if (halves.length == 1 ? missing != 0 : missing < 1) return null;
	while (halves.length == 2 && missing-- > 0) head.push(0);
	return head.concat(tail);
}

function portcullisInNet6(ip) {
	if (typeof isInNetEx == "function") {
		for (var i = 0; i < portcullisNets6.length; i++) {
			if (isInNetEx(ip, portcullisNets6[i])) return true;
		}
		return false;
	}
	var w = portcullisV6Words(ip);
	if (w == null) return false;
	for (var i = 0; i < portcullisWords6.length; i++) {
		var n = portcullisWords6[i], bits = n[8], ok = true;
		for (var j = 0; j < 8 && bits > 0 && ok; j++, bits -= 16) {
			var m = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
			ok = (w[j] & m) == (n[j] & m);
		}
		if (ok) return true;
	}
	return false;
}

function portcullisInNets(ip) {
	if (ip.indexOf(":") >= 0) return portcullisInNet6(ip);
	if (!portcullisIsIPv4(ip)) return false;
	for (var i = 0; i < portcullisNets4.length; i++) {
		if (isInNet(ip, portcullisNets4[i][0], portcullisNets4[i][1])) return true;
	}
	return false;
}

function FindProxyForURL(url, host) {
	host = String(host).toLowerCase();
	if (host.charAt(0) == "[") host = host.substring(1, host.length - 1);
	if (host.charAt(host.length - 1) == ".") host = host.substring(0, host.length - 1);
	var literal = host.indexOf(":") >= 0 || portcullisIsIPv4(host);
	if (!literal) {
		if (portcullisPlainDirect && isPlainHostName(host)) return "DIRECT";
		for (var i = 0; i < portcullisDomains.length; i++) {
			var d = portcullisDomains[i];
			if (host == d || dnsDomainIs(host, "." + d)) return "DIRECT";
		}
		for (var i = 0; i < portcullisPatterns.length; i++) {
			if (shExpMatch(host, portcullisPatterns[i])) return "DIRECT";
		}
	}
	if (portcullisNets4.length + portcullisNets6.length == 0) return portcullisProxy;
	if (literal) return portcullisInNets(host) ? "DIRECT" : portcullisProxy;
	if (!portcullisResolve) return portcullisProxy;
	var addrs = typeof dnsResolveEx == "function" ? dnsResolveEx(host) : dnsResolve(host);
	if (!addrs) return portcullisProxy;
	addrs = String(addrs).split(";");
	for (var i = 0; i < addrs.length; i++) {
		if (addrs[i] != "" && portcullisInNets(addrs[i])) return "DIRECT";
	}
	return portcullisProxy;
}
`
