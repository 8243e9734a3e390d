package lmscore

// storyChoices are multiple-choice items in the style of the TinyStories
// corpus that stories260K was trained on: a context and four endings, the
// first the natural one. They give the bf16 checks text a trained model
// expects, where random token ids sit deep in its tails (written for these
// tests).
var storyChoices = []struct {
	context string
	endings [4]string
}{
	{"Once upon a time, there was a little girl named Lily. She loved to play", [4]string{" outside in the park.", " the car on the moon.", " a blue spoon.", " because of the door."}},
	{"One day, Tom saw a big red ball in the garden. He wanted to", [4]string{" play with it.", " eat the sky.", " sleep on a fish.", " sing to the table."}},
	{"The cat was very tired. It jumped on the bed and", [4]string{" went to sleep.", " drove the truck.", " baked a cake for the tree.", " read a big book."}},
	{"Lily and her mom went to the store. They bought some", [4]string{" apples and bread.", " happy to the park.", " sun and rain.", " very big jump."}},
	{"Tim had a small dog named Max. Max liked to run and", [4]string{" bark at the birds.", " write a letter.", " fly to the moon.", " cook dinner."}},
	{"Sue was sad because her doll was broken. Her dad helped her", [4]string{" fix it.", " eat it.", " the sky.", " run away from the sun."}},
	{"Ben found a shiny rock near the river. He showed it to his", [4]string{" friend Sam.", " big lunch.", " happy tree.", " warm bed."}},
	{"It was a sunny day. The birds were singing and the flowers were", [4]string{" very pretty.", " eating cars.", " driving home.", " angry at the box."}},
	{"Mia wanted to bake a cake. She got flour, eggs and", [4]string{" sugar from the kitchen.", " a big dog.", " the moon.", " a loud noise."}},
	{"The little bird could not fly. It was scared, so it called its", [4]string{" mom for help.", " car to eat.", " tree a cake.", " ball to sleep."}},
	{"Anna liked to draw pictures. One day she drew a big", [4]string{" house with a red door.", " run and jump.", " very happy went.", " because she was."}},
	{"Jack and Jill went up the hill. At the top they saw a", [4]string{" big tree.", " small went.", " happy ran.", " very eat."}},
	{"The boy was hungry. He asked his mom for some", [4]string{" food.", " rain.", " shoes to read.", " moon."}},
	{"Lucy had a new friend at school. Her name was", [4]string{" Sara.", " table.", " jumped.", " very."}},
	{"After the rain, there was a big puddle. Tom jumped in it and got", [4]string{" all wet.", " a new car.", " very sleepy tree.", " the sun."}},
	{"The old man lived in a small house in the woods. Every morning he would", [4]string{" walk with his dog.", " fly to the stars.", " eat the house.", " turn into a fish."}},
}

// storyRequests returns storyChoices as text requests, four per context.
func storyRequests() []Request {
	var reqs []Request
	for _, c := range storyChoices {
		for _, e := range c.endings {
			reqs = append(reqs, Request{Context: c.context, Continuation: e})
		}
	}
	return reqs
}
