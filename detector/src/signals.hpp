// The words bounces are made of: sender names, subjects and body phrases of MTAs,
// auto-responders, challenge-response systems and virus scanners. Lower case; matched as
// substrings of lower-cased, RFC 2047-decoded text.
//
// A phrase here is evidence, never a verdict: classify.cpp asks for two independent signals
// (sender + subject, subject + body, body banner + returned original ...) before it calls a
// message a bounce, so that a person who writes "undeliverable" in a mail is not one.
#pragma once

#include <string_view>

namespace ndrguard::detector::signals {

// Local parts (before '@') of the addresses MTAs send bounces from.
inline constexpr std::string_view daemon_local_parts[] = {
    "mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "maildaemon", "postmaster", "mdaemon",
    "mail.daemon", "post_master", "mail-delivery-system", "maildelivery", "bounce-notification", "double-bounce", "nobody-bounce"};
// Display names used for bounces from otherwise ordinary-looking addresses.
inline constexpr std::string_view daemon_display_names[] = {
    "mail delivery system", "mail delivery subsystem", "mail delivery service", "mailer-daemon", "mail administrator",
    "postmaster", "microsoft outlook", "mail delivery", "microsoftexchange", "delivery status notification",
    "mail system", "nicht zustellbar", "mailer daemon"};

// Subjects of delivery failure and delay reports.
inline constexpr std::string_view ndr_subjects[] = {
    "undeliver", "undelivered", "returned mail", "mail delivery fail", "delivery status notification", "delivery failure",
    "failure notice", "non-deliver", "nondeliver", "not delivered", "could not be delivered", "delivery has failed",
    "delivery failed", "returned to sender", "delivery problem", "unzustellbar", "nicht zustellbar", "non remis",
    "non recapitabile", "no se puede entregar", "delivery report", "could not send message", "delayed mail",
    "delivery delayed", "message delayed", "delivery final failure", "mail system error", "failed delivery",
    "delivery notification", "unable to deliver", "mail returned", "permanent failure", "delivery error",
    "message not delivered", "message you sent blocked", "undeliverable", "bounced mail", "returned message",
    "rejected mail", "mail could not be delivered", "delivery notice", "delivery incomplete", "mail failure",
    "error sending message", "nondelivery", "message delivery failure", "retorno de mensagem", "devolución",
    "entrega fallida", "echec de distribution", "échec", "warning: message", "there was an error sending",
    "could not deliver", "mail delivery subsystem", "message rejected", "your message has been rejected",
    "message could not be sent", "sender address verify failed", "mail not delivered", "delivery status",
    "loop alert", "message rejected by list"};

// Sentences only MTAs write: one of these is strong evidence of a bounce text.
inline constexpr std::string_view ndr_banners[] = {
    "this is the mail system at host",                            // Postfix
    "i'm sorry to have to inform you that your message could not",  // Postfix
    "this is the qmail-send program",                             // qmail
    "this message was created automatically by mail delivery software",  // Exim
    "a message that you sent could not be delivered to one or more",     // Exim
    "the following addresses had permanent fatal errors",         // Sendmail
    "the original message was received at",                       // Sendmail
    "transcript of session follows",                             // Sendmail, Postfix
    "delivery to the following recipient failed permanently",     // Gmail
    "delivery to the following recipients failed",                // Gmail, Exchange
    "delivery has failed to these recipients or groups",          // Exchange 2010+
    "delivery has failed to these recipients or distribution lists",  // Exchange 2007
    "your message did not reach some or all of the intended recipients",  // Exchange 2003
    "your message wasn't delivered",                              // Office 365
    "your message couldn't be delivered",                         // Outlook.com
    "sorry, we were unable to deliver your message",              // Yahoo
    "i'm afraid i wasn't able to deliver your message",           // Yahoo (older)
    "message could not be delivered to the following",            // several
    "this is an automatically generated delivery status notification",  // Sendmail, Exchange
    "the following message to",                                   // Exchange "... was undeliverable"
    "could not be delivered to one or more recipients",
    "unable to deliver your message to the following",
    "your message cannot be delivered to the following",
    "the following recipient(s) could not be reached",            // Exchange 5.5
    "the following addresses had delivery problems",              // Courier
    "your message was not delivered to",
    "message delivery to the following",
    "has been returned to you because",
    "was not delivered to",
    "the mail server could not deliver",
    "delivery failed for the following",
    "failed to deliver to the following",
    "the following recipients did not receive this message",
    "there was a problem delivering your message",
    "message was undeliverable",
    "this is a delivery status notification",
    "this message was generated automatically by the mail system",
    "an error occurred while trying to deliver",
    "unable to deliver message to the following",
    "we were unable to deliver your message",
    "delivery of your message to",
    "could not deliver the message to",
    "was undeliverable",
    "this message has not yet been delivered",
    "message will be retried",
    "will continue trying to deliver",
    "user unknown",
    "mailbox unavailable",
    "recipient address rejected",
    "no such user",
    "mailbox not found",
    "address rejected",
    "user not found",
    "undeliverable message",
    "host or domain name not found",
    "permanent error",
    "delivery attempts will continue",
    "retry timeout exceeded",
    "mailbox is full",
    "mail quota exceeded",
    "relay access denied",
    "not listed in domino directory",
    "unknown recipient",
    "account is disabled",
    "no mailbox here by that name",
    "no such recipient",
    "recipient rejected",
    "message rejected",
    "could not be delivered",
    "the email account that you tried to reach does not exist",
    "requested action not taken",
    "smtp error from remote",
    "said: 550",
    "said: 554",
    "said: 553",
    "said: 552",
    "said: 450",
    "said: 451",
    "550 5.",
    "554 5.",
    "553 5.",
    "552 5.",
    "550-5.",
    "bounced",
    "undeliverable"};

// Lines after which MTAs append the original (or its headers) as plain text.
inline constexpr std::string_view returned_markers[] = {
    "below this line is a copy of the message", "original mail as follows", "this is a copy of the message", "original message follows",
    "original message headers", "----- original message -----", "--- original message ---",
    "the original message was", "unsent message below", "copy of the message", "rfc822 headers of the message",
    "headers of the original message", "original message header", "returned message", "message headers follow",
    "the headers of your message"};

// Phrases that mean the report is about a delay, not a failure.
inline constexpr std::string_view delay_phrases[] = {
    "will continue trying", "has not yet been delivered", "delivery attempts will continue", "message will be retried",
    "could not send message for past", "not been delivered yet", "delivery delayed", "delayed mail",
    "message delayed", "still trying", "(delay)", "delivery status notification (delay)", "temporarily deferred",
    "warning: could not send"};

// Auto-reply subjects (RFC 3834 replies, vacation, out-of-office in a few languages).
inline constexpr std::string_view autoreply_subjects[] = {
    "out of office", "out of the office", "auto:", "automatic reply", "autoreply", "auto-reply", "auto reply",
    "autoresponse", "auto response", "auto-response", "vacation", "abwesenheit", "réponse automatique",
    "reponse automatique", "respuesta automática", "respuesta automatica", "risposta automatica", "away from",
    "absent", "on leave", "automatisch antwoord", "automatische antwort", "autosvar", "automaattinen vastaus",
    "office closed", "i am away", "i'm away", "thank you for your email", "thank you for your message",
    "thanks for your email", "we have received your", "ticket received", "message received"};

// Challenge-response systems: subjects and body sentences.
inline constexpr std::string_view challenge_subjects[] = {
    "please confirm your message", "confirm your message", "confirmation required", "verify your email",
    "your message requires verification", "please verify", "authentication required", "confirm:",
    "spam arrest", "message held", "awaiting your confirmation", "sender verification", "challenge"};
inline constexpr std::string_view challenge_phrases[] = {
    "to confirm that you are", "confirm your message", "reply to this message to confirm", "are a real person",
    "spam-blocking", "spam arrest", "boxtrapper", "tmda", "to prove you are", "verify that you are",
    "human being", "challenge-response", "click the link below to confirm", "whitelist", "will be delivered once"};

// Anti-virus and content-filter notices.
// Complaint reports that are not ARF (Hotmail's JMRP and its imitators): subject plus the
// complained-about message attached.
inline constexpr std::string_view feedback_subjects[] = {
    "complaint about message", "abuse report", "spam complaint", "junk mail report"};

inline constexpr std::string_view virus_subjects[] = {
    "virus", "infected", "banned content", "banned", "malware", "worm found", "suspicious attachment",
    "content filter", "policy violation", "blocked attachment", "attachment blocked", "mail policy",
    "message blocked", "quarantined", "dangerous content", "security alert", "scan result", "spam detected",
    "content violation", "mailmarshal", "interscan", "symantec", "mcafee", "sophos", "trend micro"};
inline constexpr std::string_view virus_phrases[] = {
    "virus", "infected", "malware", "eicar", "banned contents", "banned content", "worm", "trojan",
    "quarantine", "content filter", "mailmarshal", "interscan", "scanmail", "mailscanner", "antivirus",
    "anti-virus", "blocked attachment", "attachment has been removed", "dangerous attachment", "policy"};
// Sender local parts of AV gateways.
inline constexpr std::string_view virus_senders[] = {
    "virusalert", "virus-alert", "virus", "amavis", "antivirus", "anti-virus", "mailscanner", "mailmarshal",
    "scanmail", "interscan", "quarantine", "content-filter", "contentfilter", "security", "mailsweeper"};

}  // namespace ndrguard::detector::signals
