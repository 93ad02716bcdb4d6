/* The body of an SMS in the AML format (ETSI TS 103 625) that the service's SMS channel parses:
   A"ML=1;lt=…;lg=…;rd=…;top=…;lc=…;pm=…;si=…;ei=…;mcc=…;mnc=…;ml=…  where ml is the length of the whole
   message, its own digits included. A web page cannot read the SIM or the handset, so si, ei, mcc and mnc
   are sent empty, as AML does for any value it does not have. */
(function (g) {
  'use strict';

  function two(n) { return (n < 10 ? '0' : '') + n; }

  function stamp(d) {
    return d.getUTCFullYear() + two(d.getUTCMonth() + 1) + two(d.getUTCDate()) +
      two(d.getUTCHours()) + two(d.getUTCMinutes()) + two(d.getUTCSeconds());
  }

  function signed(x) { return (x < 0 ? '-' : '+') + Math.abs(x).toFixed(5); }

  /* fix: {lat, lon, accuracy_m, fix_time} or null (no location: the position fields stay empty, pm=N). */
  g.amlBody = function (fix) {
    var fields = ['A"ML=1'];
    if (fix) {
      var radius = Math.max(1, Math.ceil(fix.accuracy_m || 0));
      // The browser does not say how it located the phone; a tight radius can only come from satellites.
      var method = radius <= 100 ? 'G' : radius <= 2000 ? 'W' : 'C';
      // Chrome on Android passes the platform's accuracy through: a radius at 68% confidence.
      fields.push('lt=' + signed(fix.lat), 'lg=' + signed(fix.lon), 'rd=' + radius,
        'top=' + stamp(new Date(fix.fix_time)), 'lc=68', 'pm=' + method);
    } else {
      fields.push('lt=', 'lg=', 'rd=', 'top=', 'lc=', 'pm=N');
    }
    fields.push('si=', 'ei=', 'mcc=', 'mnc=');
    var head = fields.join(';') + ';ml=';
    for (var digits = 1; ; digits++) {
      var total = head.length + digits;
      if (String(total).length === digits) return head + total;
    }
  };
})(self);
