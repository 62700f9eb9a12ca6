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
    "loop alert", "message rejected by list",
    // Other languages: Outlook's translations of "Undeliverable:" and the delivery-failure
    // subjects of the providers of those countries (lower case; classify folds UTF-8 capitals).
    "niedostarczalne", "niedostarczona", "nie można dostarczyć", "nie dostarczono",          // Polish
    "nedoručitelné", "nedoručeno", "nelze doručit",                                           // Czech
    "não entregue", "não é possível entregar", "não foi possível entregar", "falha na entrega", // Portuguese
    "impossibile recapitare", "mancato recapito",                                             // Italian
    "onbestelbaar", "niet bezorgd", "kan niet worden bezorgd",                                 // Dutch
    "kan inte levereras", "ej levererat", "olevererbart", "leveransfel",                       // Swedish
    "kan ikke leveres", "ikke leveret", "kunne ikke leveres", "ikke levert",                   // Danish, Norwegian
    "tavoittamaton", "ei voitu toimittaa", "toimitus epäonnistui",                            // Finnish
    "не доставлено", "недоставлено", "невозможно доставить", "не может быть доставлено",
    "ошибка доставки", "недоставленное",                                                      // Russian
    "teslim edilemedi", "teslim edilemez", "iletilemedi",                                      // Turkish
    "配信不能", "配信できません", "配送エラー", "配信エラー", "不達",                               // Japanese
    "无法投递", "無法傳遞", "無法投遞", "退信", "未送达", "投递失败", "邮件退回",                     // Chinese
    "배달되지 않음", "배달 실패", "전달 실패", "반송",                                              // Korean
    "non distribuable", "no entregado"};

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
    "undeliverable",
    // The same sentence in other languages: "your message could not be delivered".
    "nie można dostarczyć wiadomości", "wiadomość nie została dostarczona",        // Polish
    "zprávu nelze doručit", "zpráva nebyla doručena",                            // Czech
    "a mensagem não pôde ser entregue", "não foi possível entregar a mensagem",    // Portuguese
    "il messaggio non può essere recapitato", "non è stato possibile recapitare",  // Italian
    "uw bericht kan niet worden bezorgd", "het bericht kon niet worden bezorgd",   // Dutch
    "meddelandet kunde inte levereras", "ditt meddelande kunde inte levereras",    // Swedish
    "meddelelsen kunne ikke leveres", "meldingen kunne ikke leveres",              // Danish, Norwegian
    "viestiä ei voitu toimittaa", "viestin toimitus epäonnistui",                 // Finnish
    "сообщение не может быть доставлено", "не удалось доставить сообщение",        // Russian
    "mesajınız teslim edilemedi", "ileti teslim edilemedi",                        // Turkish
    "メッセージを配信できませんでした", "配信できませんでした",                              // Japanese
    "邮件无法投递", "无法投递到以下收件人", "您的邮件未能送达",                               // Chinese
    "메시지를 배달할 수 없습니다", "메일을 배달하지 못했습니다",                              // Korean
    "votre message n'a pas pu être remis", "n'a pas pu être distribué",           // French
    "no se ha podido entregar", "su mensaje no pudo ser entregado",                // Spanish
    "konnte nicht zugestellt werden"};                                             // German

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

// Auto-reply subjects (RFC 3834 replies, vacation, out-of-office). Sources: RFC 5230 4.7 (Sieve
// vacation's default "Auto:" prefix), vacation(1)'s example message ("I am on vacation"),
// Exchange/Outlook's Automatic Replies ("Automatic reply:", older "Out of Office AutoReply:")
// and Outlook's translations of that prefix, in the languages of its user interface.
inline constexpr std::string_view autoreply_subjects[] = {
    "out of office", "out of the office", "auto:", "automatic reply", "autoreply", "auto-reply", "auto reply",
    "autoresponse", "auto response", "auto-response", "vacation", "abwesenheit", "réponse automatique",
    "reponse automatique", "respuesta automática", "respuesta automatica", "risposta automatica", "away from",
    "absent", "on leave", "automatisch antwoord", "automatische antwort", "autosvar", "automaattinen vastaus",
    "office closed", "i am away", "i'm away", "thank you for your email", "thank you for your message",
    "thanks for your email", "we have received your", "ticket received", "message received",
    "autoresponder", "auto-responder", "automated response", "automatic response", "abwesend",
    "resposta automática", "resposta automatica", "ausente", "ausência", "fuera de la oficina",
    "fuori ufficio", "afwezig", "odpowiedź automatyczna", "odpowiedz automatyczna", "autoodpowiedź",
    "nieobecność", "poza biurem", "automatiskt svar", "automatisk svar", "frånvaro", "fravær",
    "automatická odpověď", "automaticka odpoved", "mimo kancelář", "nepřítomnost", "automaattinen vastaus",
    "poissa", "lomalla", "автоматический ответ", "автоответ", "вне офиса", "отсутствую", "в отпуске",
    "otomatik yanıt", "otomatik cevap", "ofis dışında", "izindeyim", "自動応答", "自動返信", "不在",
    "自动回复", "自動回覆", "自動回复", "休假", "자동 응답", "자동 회신", "자동응답", "부재", "αυτόματη απάντηση"};

// Subjects some autoresponders write as a sentence about the person, after the name: Lotus
// Notes/Domino's out-of-office agent ("<name> is out of the office.") and its translations.
inline constexpr std::string_view autoreply_subject_sentences[] = {
    "is out of the office", "ist außer haus", "ist ausser haus", "ist nicht im büro", "est absent", "n'est pas au bureau",
    "está fuera de la oficina", "è fuori ufficio", "is niet op kantoor", "está fora do escritório"};

// Sentences of out-of-office and vacation texts: the default texts of autoresponders and what
// people write into them, in the languages the subjects above cover. Evidence only together
// with an auto-reply subject or an automatic sender, never alone.
inline constexpr std::string_view autoreply_phrases[] = {
    "i am out of the office", "i'm out of the office", "i am currently out of the office", "out of the office until",
    "i am on vacation", "i'm on vacation", "i am away", "i'm away", "i am currently away", "i will be out of",
    "i will be away", "i am on leave", "i am on holiday", "i'm on holiday", "on annual leave", "on parental leave",
    "with limited access to e-mail", "with limited access to email", "limited access to my email", "i will be back",
    "i will return on", "i will respond to your", "i will reply to your", "i'll respond", "upon my return",
    "when i return", "in my absence", "in urgent cases", "for urgent matters", "this is an automatic reply",
    "this is an automated reply", "this is an automated response", "this is an auto-reply", "this is an autoreply",
    "automatic reply", "your message will not be forwarded", "away from my mail", "away from the office",
    // German
    "ich bin bis", "bin ich nicht im büro", "abwesend", "außer haus", "ausser haus", "im urlaub", "abwesenheit",
    "in dringenden fällen", "nicht erreichbar",
    // French
    "je suis absent", "je serai absent", "actuellement absent", "je suis en congé", "en congés", "de retour le",
    "je serai de retour", "en cas d'urgence", "réponse automatique", "hors du bureau",
    // Spanish
    "estoy fuera de la oficina", "estaré fuera", "me encuentro fuera", "estoy de vacaciones", "de vacaciones",
    "estaré ausente", "regresaré", "respuesta automática", "en caso de urgencia",
    // Italian
    "sono fuori ufficio", "sarò assente", "saro' assente", "sono in ferie", "in ferie", "rientrerò", "risposta automatica",
    "in caso di urgenza",
    // Portuguese
    "estou fora do escritório", "estarei ausente", "estou de férias", "de férias", "estarei de volta",
    "resposta automática", "em caso de urgência",
    // Dutch
    "ik ben afwezig", "ben ik afwezig", "ik ben met vakantie", "met vakantie", "niet aanwezig", "ben weer aanwezig",
    "automatisch antwoord", "in dringende gevallen",
    // Polish
    "jestem poza biurem", "jestem nieobecn", "przebywam na urlopie", "jestem na urlopie", "odpowiedź automatyczna",
    "w pilnych sprawach",
    // Czech
    "jsem mimo kancelář", "jsem na dovolené", "nejsem v kanceláři", "v naléhavých případech",
    // Swedish, Danish, Norwegian
    "jag är ledig", "jag är borta", "jag är på semester", "är tillbaka", "jeg er på ferie", "jeg er fraværende",
    "jeg er ikke på kontoret", "jeg er tilbake", "jeg er tilbage", "automatisk svar", "automatiskt svar",
    // Finnish
    "olen lomalla", "olen poissa", "automaattinen vastaus",
    // Russian
    "я в отпуске", "я отсутствую", "нахожусь в отпуске", "вне офиса", "автоматический ответ", "буду отсутствовать",
    // Turkish
    "ofis dışındayım", "izindeyim", "otomatik yanıt", "otomatik cevap",
    // Japanese, Chinese, Korean
    "不在にしております", "不在です", "自動応答", "自動返信", "休暇", "自动回复", "自動回覆", "不在办公室", "休假",
    "자동 응답", "부재중", "휴가"};
// Header fields only autoresponders write: vacation(1)'s manual page has its example message
// carry "Delivered-By-The-Graces-Of: The Vacation program"; cPanel, Roundcube and Yahoo write
// the X-Autoreply family (in read_top_header).

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
