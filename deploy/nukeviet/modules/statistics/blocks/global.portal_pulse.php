<?php

/**
 * The counter block of portal-pulse, in place of global.counter.php: the five figures
 * (online, today, this month, last month, total) rendered by widget.js, a pixel for
 * pages seen without JavaScript, and the inactivity prompt for signed-in users.
 * Copy to NV_ROOTDIR/modules/statistics/blocks/ and put it where the old counter block was
 * (Administration > Interface > Blocks).
 */

if (!defined('NV_MAINFILE')) {
    exit('Stop!!!');
}

require_once NV_ROOTDIR . '/includes/portal_pulse.php';

if (!nv_function_exists('nv_block_portal_pulse')) {
    /**
     * @return string the block's HTML
     */
    function nv_block_portal_pulse()
    {
        $uri = isset($_SERVER['REQUEST_URI']) ? (string) $_SERVER['REQUEST_URI'] : '/';
        $path = parse_url($uri, PHP_URL_PATH);
        if (!is_string($path) or $path === '') {
            $path = '/';
        }
        return portal_pulse_tags(defined('NV_IS_USER'), $path);
    }
}

if (defined('NV_SYSTEM')) {
    $content = nv_block_portal_pulse();
}
