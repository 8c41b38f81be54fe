<?php

/**
 * portal-pulse settings of this NukeViet site: copy to NV_ROOTDIR/data/config/portal_pulse.php
 * (readable by PHP only). Keys left out keep the defaults of includes/portal_pulse.php.
 */

if (!defined('NV_MAINFILE') and !defined('PORTAL_PULSE_CLI')) {
    exit('Stop!!!');
}

return [
    'site' => 'default',
    'lang' => 'vi',
    'counter_path' => '/pulse',
    'session_path' => '/pulse-session',
    'session_service' => 'http://127.0.0.1:8081',
    // Better: set PULSE_SERVICE_TOKEN in php-fpm's pool (env[PULSE_SERVICE_TOKEN] = ...).
    'service_token' => '',
    'logout_url' => '/index.php?nv=users&op=logout',
];
