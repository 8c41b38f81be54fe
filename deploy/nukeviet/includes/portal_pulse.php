<?php

/**
 * portal-pulse for NukeViet 4: configuration, the sign-in and sign-out hooks (a session
 * of the session service per signed-in user, through curl with the service token), and
 * the tags the theme block prints. Copy to NV_ROOTDIR/includes/portal_pulse.php.
 *
 * Configuration: NV_ROOTDIR/data/config/portal_pulse.php (or the file named by the
 * PORTAL_PULSE_CONFIG environment variable) returns an array overriding the defaults
 * below; the service token may instead come from the PULSE_SERVICE_TOKEN environment
 * variable. Never put the token in a theme or anything the web server serves as is.
 */

if (!defined('NV_MAINFILE') and !defined('PORTAL_PULSE_CLI')) {
    exit('Stop!!!');
}

/** The settings, read once per request. */
function portal_pulse_config()
{
    static $config = null;
    if ($config !== null) {
        return $config;
    }
    $config = [
        'site' => 'default',                          // the counter's configured site name
        'lang' => 'vi',                               // widget and prompt language: vi or en
        'counter_path' => '/pulse',                   // public path of the counter (nginx location)
        'session_path' => '/pulse-session',           // public path of the session service
        'session_service' => 'http://127.0.0.1:8081', // the session service as the back end reaches it
        'service_token' => '',                        // PULSE_SERVICE_TOKEN of the session service
        'subject_prefix' => 'nukeviet:',              // subject = prefix . userid (the expiry consumer reads it)
        'cookie' => 'nv_pulse_session',               // holds the session id between requests
        'logout_url' => '/index.php?nv=users&op=logout', // where session.js sends a user whose session expired
        'timeout_seconds' => 2,
    ];
    $file = getenv('PORTAL_PULSE_CONFIG');
    if (!$file and defined('NV_ROOTDIR')) {
        $file = NV_ROOTDIR . '/data/config/portal_pulse.php';
    }
    if ($file and is_file($file)) {
        $loaded = require $file;
        if (is_array($loaded)) {
            $config = array_merge($config, $loaded);
        }
    }
    $token = getenv('PULSE_SERVICE_TOKEN');
    if ($token) {
        $config['service_token'] = $token;
    }
    return $config;
}

/**
 * One call to the session service: [HTTP status (0 when unreachable), decoded JSON body].
 */
function portal_pulse_request($method, $path, $body = null)
{
    $config = portal_pulse_config();
    $curl = curl_init(rtrim($config['session_service'], '/') . $path);
    $headers = ['Accept: application/json', 'Authorization: Bearer ' . $config['service_token']];
    if ($body !== null) {
        $headers[] = 'Content-Type: application/json';
        curl_setopt($curl, CURLOPT_POSTFIELDS, json_encode($body));
    }
    curl_setopt_array($curl, [
        CURLOPT_CUSTOMREQUEST => $method,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_HTTPHEADER => $headers,
        CURLOPT_CONNECTTIMEOUT => $config['timeout_seconds'],
        CURLOPT_TIMEOUT => $config['timeout_seconds'],
    ]);
    $raw = curl_exec($curl);
    $status = $raw === false ? 0 : (int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
    curl_close($curl);
    $decoded = is_string($raw) ? json_decode($raw, true) : null;
    return [$status, is_array($decoded) ? $decoded : []];
}

/** A well-formed session id (43 URL-safe characters), or null. */
function portal_pulse_session_id()
{
    $config = portal_pulse_config();
    $id = isset($_COOKIE[$config['cookie']]) ? (string) $_COOKIE[$config['cookie']] : '';
    return preg_match('/^[A-Za-z0-9_-]{43}$/', $id) ? $id : null;
}

function portal_pulse_cookie($value, $expires)
{
    $config = portal_pulse_config();
    if (!headers_sent()) {
        setcookie($config['cookie'], $value, [
            'expires' => $expires,
            'path' => '/',
            'secure' => !empty($_SERVER['HTTPS']) && $_SERVER['HTTPS'] !== 'off',
            'httponly' => true,
            'samesite' => 'Lax',
        ]);
    }
    if ($value === '') {
        unset($_COOKIE[$config['cookie']]);
    } else {
        $_COOKIE[$config['cookie']] = $value;
    }
}

/**
 * Sign-in hook: call after NukeViet signed the user in (end of validUserLog()). Creates a
 * session; returns its id, or null when the service did not answer (the sign-in goes on,
 * only the inactivity prompt is missing, and the error log says why).
 */
function portal_pulse_sign_in($userid)
{
    $config = portal_pulse_config();
    list($status, $body) = portal_pulse_request('POST', '/v1/sessions', ['subject' => $config['subject_prefix'] . (int) $userid]);
    if ($status !== 201 or empty($body['id'])) {
        error_log('portal-pulse: creating a session failed with HTTP ' . $status);
        return null;
    }
    portal_pulse_cookie($body['id'], 0);
    return $body['id'];
}

/**
 * Sign-out hook: call when NukeViet signs the user out (modules/users/funcs/logout.php).
 * Ends the session (every open tab closes its prompt) and forgets the cookie.
 */
function portal_pulse_sign_out()
{
    $id = portal_pulse_session_id();
    $status = 0;
    if ($id !== null) {
        list($status) = portal_pulse_request('DELETE', '/v1/sessions/' . $id);
    }
    portal_pulse_cookie('', 1);
    return $status;
}

/**
 * The tags of the counter block: the widget, the no-script pixel for this page's path and,
 * for a signed-in user with a session, the inactivity prompt.
 */
function portal_pulse_tags($member, $path)
{
    $config = portal_pulse_config();
    $h = function ($text) {
        return htmlspecialchars((string) $text, ENT_QUOTES, 'UTF-8');
    };
    $counter = rtrim($config['counter_path'], '/');
    $pixel = $counter . '/v1/hit.gif?' . http_build_query(['site' => $config['site'], 'path' => $path]);
    $html = '<div id="pulse-counter"></div>' . "\n"
        . '<script src="' . $h($counter . '/widget.js') . '" data-site="' . $h($config['site']) . '" data-lang="'
        . $h($config['lang']) . '"' . ($member ? ' data-member="1"' : '') . ' async></script>' . "\n"
        . '<noscript><img src="' . $h($pixel) . '" width="1" height="1" alt=""></noscript>' . "\n";
    $session = $member ? portal_pulse_session_id() : null;
    if ($session !== null) {
        $html .= '<script src="' . $h(rtrim($config['session_path'], '/') . '/session.js') . '" data-session="'
            . $h($session) . '" data-lang="' . $h($config['lang']) . '" data-logout-url="'
            . $h($config['logout_url']) . '" async></script>' . "\n";
    }
    return $html;
}
